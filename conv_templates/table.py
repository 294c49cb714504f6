"""The data: one row per template family, and the model-name rules that point at them.

Each row's `source` names where its format comes from. No row carries an example
conversation: where the authors' own prompt had a canned exchange (Baize's "Hello!/Hi!",
OpenBuddy's "Hi./Hi, I'm Buddy"), it is left out and the rest of their prompt kept.

`stop_token_ids` follow FastChat's record where it has one; the backend always stops on the
tokenizer's own EOS as well, so families whose turns end in EOS need no id here.

Name rules: a pattern is a sequence of name tokens (the name lower-cased and split on anything
not a letter or digit) that must appear in that order in the model's own name (never its
owner's); the most specific rule wins (priority, then number of tokens, then characters), never
the order of this table. Three priorities: family rules (0) beat the base vendor's own chat
format (-1, which fine-tunes inherit in their names), and both beat base-model rules (-2, which
point at `raw`).
"""

from __future__ import annotations

import dataclasses

from .base import ConversationTemplate
from .rules import NameRule

_VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
_VICUNA_V0_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
_ALPACA_SYSTEM = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
_BAIZE_SYSTEM = (
    "The following is a conversation between a human and an AI assistant named Baize (named "
    "after a mythical creature in Chinese folklore). Baize is an open-source AI assistant "
    "developed by UCSD and Sun Yat-Sen University. The human and the AI assistant take turns "
    "chatting. Human statements start with [|Human|] and AI assistant statements start with "
    "[|AI|]. The AI assistant always provides responses in as much detail as possible, and in "
    "Markdown format. The AI assistant always declines to engage with topics, questions and "
    "instructions related to unethical, controversial, or sensitive issues. Complete the "
    "transcript in exactly that format."
)
_OPENBUDDY_SYSTEM = (
    "You are a helpful, respectful and honest INTP-T AI Assistant named Buddy. "
    "You are talking to a human User.\n"
    "Always answer as helpfully and logically as possible, while being safe. Your answers "
    "should not include any harmful, political, religious, unethical, racist, sexist, toxic, "
    "dangerous, or illegal content. Please ensure that your responses are socially unbiased "
    "and positive in nature.\n"
    "If a question does not make any sense, or is not factually coherent, explain why instead "
    "of answering something not correct. If you don't know the answer to a question, please "
    "don't share false information.\n"
    "You like to use emojis. You can speak fluently in many languages, for example: English, "
    "Chinese.\n"
    "You cannot access the internet, but you have vast knowledge, cutoff: 2021-09.\n"
    "You are trained by OpenBuddy team, (https://openbuddy.ai, "
    "https://github.com/OpenBuddy/OpenBuddy), you are based on LLaMA and Falcon transformers "
    "model, not related to GPT or OpenAI."
)
_CHINESE_VICUNA_SYSTEM = (
    "The following is a conversation between an AI assistant called Assistant and a human user "
    "called User. The assistant is intelligent, knowledgeable and polite to answer questions "
    "of user."
)
_GPT4ALL_SYSTEM = (
    "The prompt below is a question to answer, a task to complete, or a conversation to "
    "respond to; decide which and write an appropriate response."
)

# Meta's Llama-2 dialog format; Chinese-Alpaca-2 reuses it with its own system prompt and no
# space before the '</s>' that ends a reply.
LLAMA_2_CHAT = ConversationTemplate(
    name="llama-2-chat",
    source="meta-llama/llama generation.py chat_completion (B_INST/B_SYS) and the "
    "Llama-2-7b-chat-hf tokenizer_config.json chat_template",
    roles=("[INST]", "[/INST]"),
    system_format="<<SYS>>\n{system}\n<</SYS>>\n\n",
    system_in_first_user=True,
    user_prefix="[INST] ",
    user_suffix=" [/INST]",
    assistant_prefix=" ",
    assistant_suffix=" </s><s>",
    generation_prompt="",
    strip_content=True,
)

# Stanford Alpaca's prompt_no_input: the response follows "### Response:" directly, then EOS.
ALPACA = ConversationTemplate(
    name="alpaca",
    source="tatsu-lab/stanford_alpaca train.py PROMPT_DICT['prompt_no_input'] (target + EOS)",
    roles=("### Instruction", "### Response"),
    system_message=_ALPACA_SYSTEM,
    system_format="{system}\n\n",
    user_prefix="### Instruction:\n",
    user_suffix="\n\n",
    assistant_prefix="### Response:",
    assistant_suffix="</s>",
    stop_strings=("### Instruction:",),
)

# ChatML (OpenAI's chat markup): SmolLM2, Qwen, OpenHermes; families with a default system
# prompt get a row of their own.
CHATML = ConversationTemplate(
    name="chatml",
    source="HuggingFaceTB/SmolLM2-135M-Instruct and teknium/OpenHermes-2.5 ChatML "
    "(<|im_start|>role\\n...<|im_end|>\\n, no default system prompt); the <|im_end|> id "
    "differs per vocabulary, so the worker looks it up in the model's tokenizer",
    roles=("user", "assistant"),
    system_format="<|im_start|>system\n{system}<|im_end|>\n",
    user_prefix="<|im_start|>user\n",
    user_suffix="<|im_end|>\n",
    assistant_prefix="<|im_start|>assistant\n",
    assistant_suffix="<|im_end|>\n",
    stop_strings=("<|im_end|>",),
    # Qwen2.5's tool format (Hermes-2-Pro style): results come back in a user turn
    tool_format="hermes",
    tool_prefix="<|im_start|>user\n",
    tool_suffix="<|im_end|>\n",
)

TEMPLATES: tuple[ConversationTemplate, ...] = (
    ConversationTemplate(
        name="raw",
        source="no template: message contents concatenated as given (base models)",
        roles=("", ""),
    ),
    ConversationTemplate(
        name="vicuna_v0",
        source="FastChat conversation.py 'one_shot'/'zero_shot' (Vicuna v0 weights, sep '###'), "
        "without its example conversation",
        roles=("Human", "Assistant"),
        system_message=_VICUNA_V0_SYSTEM,
        system_format="{system}\n",
        user_prefix="### Human: ",
        user_suffix="\n",
        assistant_prefix="### Assistant: ",
        assistant_suffix="\n",
        generation_prompt="### Assistant:",
        stop_strings=("###",),
    ),
    ConversationTemplate(
        name="vicuna_v1.1",
        source="FastChat conversation.py 'vicuna_v1.1' and docs/vicuna_weights_version.md",
        roles=("USER", "ASSISTANT"),
        system_message=_VICUNA_SYSTEM,
        system_format="{system} ",
        user_prefix="USER: ",
        user_suffix=" ",
        assistant_prefix="ASSISTANT: ",
        assistant_suffix="</s>",
        generation_prompt="ASSISTANT:",
    ),
    ALPACA,
    dataclasses.replace(
        ALPACA,
        name="open-alpaca",
        source="yxuansu/OpenAlpaca README.md (Stanford Alpaca prompt, OpenLLaMA base)",
    ),
    dataclasses.replace(
        ALPACA,
        name="gpt4-x-alpaca",
        source="chavinlo/gpt4-x-alpaca model card (Alpaca-13B fine-tune, Stanford Alpaca prompt)",
    ),
    dataclasses.replace(
        ALPACA,
        name="gpt4-x-vicuna",
        source="NousResearch/gpt4-x-vicuna-13b model card prompt format "
        "('### Instruction:' / '### Response:', no preamble)",
        system_message="",
    ),
    dataclasses.replace(
        ALPACA,
        name="nous-hermes",
        source="NousResearch/Nous-Hermes-Llama2-13b model card 'Prompt Format' (Alpaca: "
        "'### Instruction:\\n<prompt>\\n\\n### Response:\\n', no preamble)",
        system_message="",
        assistant_prefix="### Response:\n",
    ),
    dataclasses.replace(
        ALPACA,
        name="wizardmath",
        source="WizardLM/WizardMath-7B-V1.0 model card inference prompt (Alpaca preamble, "
        "'### Response: Let's think step by step.')",
        generation_prompt="### Response: Let's think step by step.",
    ),
    ConversationTemplate(
        name="chinese-alpaca",
        source="ymcui/Chinese-LLaMA-Alpaca scripts/training/build_dataset.py PROMPT_TEMPLATE "
        "and scripts/inference/gradio_demo.py (multi-turn)",
        roles=("### Instruction", "### Response"),
        system_message=_ALPACA_SYSTEM,
        system_format="{system}\n\n",
        user_prefix="### Instruction:\n",
        user_suffix="\n\n",
        assistant_prefix="### Response: ",
        assistant_suffix="\n\n",
        stop_strings=("### Instruction:",),
    ),
    dataclasses.replace(
        LLAMA_2_CHAT,
        name="chinese-alpaca-2",
        source="ymcui/Chinese-LLaMA-Alpaca-2 scripts/inference/gradio_demo.py "
        "(TEMPLATE_WITH_SYSTEM_PROMPT, DEFAULT_SYSTEM_PROMPT, turns joined by '</s><s>')",
        system_message="You are a helpful assistant. 你是一个乐于助人的助手。",
        assistant_suffix="</s><s>",
        strip_content=False,
    ),
    ConversationTemplate(
        name="chinese-vicuna",
        source="Facico/Chinese-Vicuna prompt.py chat_prompt (prompt_pre/history/post)",
        roles=("User", "Assistant"),
        system_message=_CHINESE_VICUNA_SYSTEM,
        system_format="{system}\n\n",
        user_prefix="User:",
        user_suffix="\n\n",
        assistant_prefix="Assistant:",
        assistant_suffix="\n\n",
        strip_content=True,
        stop_strings=("User:",),
    ),
    ConversationTemplate(
        name="belle",
        source="BelleGroup/BELLE-7B-2M model card 'Use model' ('Human: {input}\\n\\nAssistant:', "
        "earlier turns concatenated); the first BELLE generation (BLOOMZ and LLaMA 2M/0.6M)",
        roles=("Human", "Assistant"),
        system_format="{system}\n\n",
        user_prefix="Human: ",
        user_suffix="\n\n",
        assistant_prefix="Assistant: ",
        assistant_suffix="\n\n",
        generation_prompt="Assistant:",
        strip_content=True,
        stop_strings=("Human:",),
    ),
    ConversationTemplate(
        name="belle-2",
        source="LianjiaTech/BELLE train/src/sample_generator.py sft_sample_to_ids and "
        "entry_point/interface.py ('Human: \\n' ... '\\n\\nAssistant: \\n', EOS after each "
        "reply; BELLE issue 337): BELLE-Llama2 (BELLE-2) and BELLE-LLaMA-EXT",
        roles=("Human", "Assistant"),
        system_format="{system}\n\n",
        user_prefix="Human: \n",
        user_suffix="\n\n",
        assistant_prefix="Assistant: \n",
        assistant_suffix="</s>",
        stop_strings=("Human:",),
    ),
    ConversationTemplate(
        name="baichuan-chat",
        source="baichuan-inc/Baichuan-13B-Chat modeling_baichuan.py _build_chat_input "
        "(user_token_id 195 = <reserved_102>, assistant_token_id 196 = <reserved_103>)",
        roles=("<reserved_102>", "<reserved_103>"),
        user_prefix="<reserved_102>",
        assistant_prefix="<reserved_103>",
    ),
    ConversationTemplate(
        name="baichuan2-chat",
        source="baichuan-inc/Baichuan2-13B-Chat generation_utils.py build_chat_input "
        "(user_token_id 195 = <reserved_106>, assistant_token_id 196 = <reserved_107>)",
        roles=("<reserved_106>", "<reserved_107>"),
        user_prefix="<reserved_106>",
        assistant_prefix="<reserved_107>",
    ),
    ConversationTemplate(
        name="openbuddy",
        source="OpenBuddy/OpenBuddy README.md system prompt and 'User: ...\\nAssistant:' format "
        "(canned 'Hi.' exchange left out)",
        roles=("User", "Assistant"),
        system_message=_OPENBUDDY_SYSTEM,
        system_format="{system}\n\n",
        user_prefix="User: ",
        user_suffix="\n",
        assistant_prefix="Assistant: ",
        assistant_suffix="\n",
        generation_prompt="Assistant:",
        stop_strings=("\nUser:",),
    ),
    ConversationTemplate(
        name="wizardlm",
        source="WizardLM/WizardLM-7B-V1.0 model card ('{instruction}\\n\\n### Response:'); "
        "WizardLM 13B/30B/70B use vicuna_v1.1",
        roles=("", "### Response"),
        system_format="{system}\n\n",
        user_suffix="\n\n",
        assistant_prefix="### Response:",
        assistant_suffix="</s>",
    ),
    ConversationTemplate(
        name="tulu",
        source="allenai/open-instruct encode_with_messages_format (_concat_messages) and the "
        "allenai/tulu-2-7b model card",
        roles=("<|user|>", "<|assistant|>"),
        system_format="<|system|>\n{system}\n",
        user_prefix="<|user|>\n",
        user_suffix="\n",
        assistant_prefix="<|assistant|>\n",
        assistant_suffix="</s>\n",
        strip_content=True,
    ),
    ConversationTemplate(
        name="gpt4all",
        source="FastChat conversation.py 'snoozy' (nomic-ai/gpt4all bindings gpt4all.py prompt "
        "for gpt4all-13b-snoozy)",
        roles=("### Prompt", "### Response"),
        system_message=_GPT4ALL_SYSTEM,
        system_format="### Instruction:\n{system}\n",
        user_prefix="### Prompt: ",
        user_suffix="\n",
        assistant_prefix="### Response: ",
        assistant_suffix="\n",
        generation_prompt="### Response:",
        stop_strings=("###",),
    ),
    ConversationTemplate(
        name="koala",
        source="young-geng/EasyLM docs/koala.md ('BEGINNING OF CONVERSATION: USER: ... GPT:') "
        "and FastChat 'koala_v1'",
        roles=("USER", "GPT"),
        system_message="BEGINNING OF CONVERSATION:",
        system_format="{system} ",
        user_prefix="USER: ",
        user_suffix=" ",
        assistant_prefix="GPT: ",
        assistant_suffix="</s>",
        generation_prompt="GPT:",
    ),
    ConversationTemplate(
        name="pygmalion",
        source="PygmalionAI/pygmalion-6b and pygmalion-7b model cards ('[CHARACTER]'s Persona:', "
        "'<START>', 'You:' turns); the character is called Assistant",
        roles=("You", "Assistant"),
        system_format="Assistant's Persona: {system}\n<START>\n",
        user_prefix="You: ",
        user_suffix="\n",
        assistant_prefix="Assistant: ",
        assistant_suffix="\n",
        generation_prompt="Assistant:",
        stop_strings=("\nYou:",),
    ),
    ConversationTemplate(
        name="metharme",
        source="PygmalionAI/metharme-7b and pygmalion-2-13b model cards (Metharme format: "
        "<|system|>, <|user|>, <|model|>)",
        roles=("<|user|>", "<|model|>"),
        system_format="<|system|>{system}",
        user_prefix="<|user|>",
        assistant_prefix="<|model|>",
        stop_strings=("<|user|>",),
    ),
    ConversationTemplate(
        name="baize",
        source="project-baize/baize-chatbot demo/app_modules/utils.py "
        "generate_prompt_with_history (canned Hello!/Hi! exchange left out)",
        roles=("[|Human|]", "[|AI|]"),
        system_message=_BAIZE_SYSTEM,
        system_format="{system}\n",
        user_prefix="[|Human|]",
        user_suffix="\n",
        assistant_prefix="[|AI|]",
        assistant_suffix="\n",
        stop_strings=("[|Human|]",),
    ),
    ConversationTemplate(
        name="stable-vicuna",
        source="CarperAI/stable-vicuna-13b-delta model card and FastChat 'stable-vicuna' "
        "(spaces/CarperAI/StableVicuna app.py)",
        roles=("### Human", "### Assistant"),
        system_message="### Assistant: I am StableVicuna, a large language model created by "
        "CarperAI. I am here to chat!",
        system_format="{system}\n\n",
        user_prefix="### Human: ",
        user_suffix="\n",
        assistant_prefix="### Assistant: ",
        assistant_suffix="\n\n",
        generation_prompt="### Assistant:",
        stop_strings=("### Human:",),
    ),
    ConversationTemplate(
        name="stack-llama",
        source="huggingface/trl examples/research_projects/stack_llama "
        "('Question: {q}\\n\\nAnswer: {a}', EOS between examples)",
        roles=("Question", "Answer"),
        system_format="{system}\n\n",
        user_prefix="Question: ",
        user_suffix="\n\n",
        assistant_prefix="Answer: ",
        assistant_suffix="</s>",
        stop_strings=("\nQuestion:",),
    ),
    LLAMA_2_CHAT,
    ConversationTemplate(
        name="llama2-chinese",
        source="FlagAlpha/Llama2-Chinese-7b-Chat model card -> FlagAlpha/Llama2-Chinese README "
        "SFT format ('<s>Human: {q}\\n</s><s>Assistant: {a}\\n</s>')",
        roles=("Human", "Assistant"),
        system_format="{system}\n",
        user_prefix="Human: ",
        user_suffix="\n</s><s>",
        assistant_prefix="Assistant: ",
        assistant_suffix="\n</s><s>",
    ),
    ConversationTemplate(
        name="llama2-uncensored",
        source="georgesung/llama2_7b_chat_uncensored model card 'Prompt style' "
        "('### HUMAN:\\n{prompt}\\n\\n### RESPONSE:\\n')",
        roles=("### HUMAN", "### RESPONSE"),
        system_format="{system}\n\n",
        user_prefix="### HUMAN:\n",
        user_suffix="\n\n",
        assistant_prefix="### RESPONSE:\n",
        assistant_suffix="\n\n",
        stop_strings=("### HUMAN:",),
    ),
    ConversationTemplate(
        name="llama-3-instruct",
        source="meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json chat_template and "
        "meta-llama/llama3 tokenizer.py ChatFormat",
        roles=("user", "assistant"),
        system_format="<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>",
        user_prefix="<|start_header_id|>user<|end_header_id|>\n\n",
        user_suffix="<|eot_id|>",
        assistant_prefix="<|start_header_id|>assistant<|end_header_id|>\n\n",
        assistant_suffix="<|eot_id|>",
        strip_content=True,
        stop_strings=("<|eot_id|>",),
        stop_token_ids=(128001, 128009),
        # Llama 3.1's JSON tool calling: results come back in an ipython turn
        tool_format="llama3_json",
        tool_prefix="<|start_header_id|>ipython<|end_header_id|>\n\n",
        tool_suffix="<|eot_id|>",
    ),
    CHATML,
    dataclasses.replace(
        CHATML,
        name="qwen-chat",
        source="Qwen/Qwen-7B-Chat qwen_generation_utils.py make_context and the Qwen1.5/Qwen2 "
        "chat_template: ChatML with the default system prompt 'You are a helpful assistant.'",
        system_message="You are a helpful assistant.",
    ),
    dataclasses.replace(
        CHATML,
        name="qwen2.5",
        source="Qwen/Qwen2.5-7B-Instruct tokenizer_config.json chat_template: ChatML with its "
        "default system prompt",
        system_message="You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
    ),
    ConversationTemplate(
        name="mistral-instruct",
        source="mistralai/Mistral-7B-Instruct-v0.1 model card 'Instruction format' and "
        "mistral-common v1 tokenizer (system text joined to the first user message)",
        roles=("[INST]", "[/INST]"),
        system_format="{system}\n\n",
        system_in_first_user=True,
        user_prefix="[INST] ",
        user_suffix=" [/INST]",
        assistant_prefix=" ",
        assistant_suffix="</s>",
        generation_prompt="",
    ),
    ConversationTemplate(
        name="zephyr",
        source="HuggingFaceH4/zephyr-7b-beta tokenizer_config.json chat_template",
        roles=("<|user|>", "<|assistant|>"),
        system_format="<|system|>\n{system}</s>\n",
        user_prefix="<|user|>\n",
        user_suffix="</s>\n",
        assistant_prefix="<|assistant|>\n",
        assistant_suffix="</s>\n",
        stop_strings=("</s>",),
        stop_token_ids=(2,),
    ),
)

# Rule priorities. A fine-tune's name usually carries its base model's name, so a family rule
# (priority 0) must win over the base vendor's own chat format ("BELLE-Llama2-13B-chat" is BELLE,
# not Llama-2-chat), and both win over bare base-model names, which point at `raw`.
_VENDOR = -1  # the base model's maker's own chat release (Llama-2-chat, Qwen-Chat, ...)
_BASE = -2  # base models (no chat training): lose to any chat rule that also matches

RULES: tuple[NameRule, ...] = (
    # Vicuna and friends trained on the Vicuna v1.1 format.
    NameRule("vicuna", "vicuna_v1.1"),
    NameRule("vicuna-v0", "vicuna_v0"),
    NameRule("stable-vicuna", "stable-vicuna"),
    NameRule("stablevicuna", "stable-vicuna"),
    NameRule("gpt4-x-vicuna", "gpt4-x-vicuna"),
    NameRule("chinese-vicuna", "chinese-vicuna"),
    NameRule("longchat", "vicuna_v1.1"),
    NameRule("xwin-lm", "vicuna_v1.1"),
    # WizardLM: the 7B V1.0 has its own format; the larger V1.x and WizardLM-2 use Vicuna's
    # (microsoft/WizardLM-2-7B model card 'Prompt Format').
    NameRule("wizardlm", "wizardlm"),
    NameRule("wizardlm-13b", "vicuna_v1.1"),
    NameRule("wizardlm-30b", "vicuna_v1.1"),
    NameRule("wizardlm-70b", "vicuna_v1.1"),
    NameRule("wizardlm-2", "vicuna_v1.1"),
    NameRule("wizardcoder", "alpaca"),
    NameRule("wizardmath", "wizardmath"),
    # Alpaca and its relatives.
    NameRule("alpaca", "alpaca"),
    NameRule("open-alpaca", "open-alpaca"),
    NameRule("openalpaca", "open-alpaca"),
    NameRule("gpt4-x-alpaca", "gpt4-x-alpaca"),
    NameRule("chinese-alpaca", "chinese-alpaca"),
    NameRule("chinese-alpaca-2", "chinese-alpaca-2"),
    NameRule("nous-hermes", "nous-hermes"),
    NameRule("nous-hermes-llama-2", "nous-hermes"),
    # Chinese families.
    NameRule("baichuan-chat", "baichuan-chat", priority=_VENDOR),
    NameRule("baichuan2-chat", "baichuan2-chat", priority=_VENDOR),
    NameRule("belle", "belle"),
    NameRule("belle-llama2", "belle-2"),
    NameRule("belle-llama-ext", "belle-2"),
    NameRule("llama2-chinese", "llama2-chinese"),
    # Other LLaMA chat fine-tunes.
    NameRule("openbuddy", "openbuddy"),
    NameRule("tulu", "tulu"),
    NameRule("gpt4all", "gpt4all"),
    NameRule("koala", "koala"),
    NameRule("pygmalion", "pygmalion"),
    NameRule("pygmalion-2", "metharme"),
    NameRule("metharme", "metharme"),
    NameRule("mythalion", "metharme"),
    NameRule("baize", "baize"),
    NameRule("stack-llama", "stack-llama"),
    NameRule("llama-se-rl", "stack-llama"),
    NameRule("llama2-chat-uncensored", "llama2-uncensored"),
    # Meta's chat formats.
    NameRule("llama-2-chat", "llama-2-chat", priority=_VENDOR),
    NameRule("llama2-chat", "llama-2-chat", priority=_VENDOR),
    NameRule("codellama-instruct", "llama-2-chat", priority=_VENDOR),
    NameRule("llama-3-instruct", "llama-3-instruct", priority=_VENDOR),
    NameRule("llama3-instruct", "llama-3-instruct", priority=_VENDOR),
    # ChatML, with the family's default system prompt where it has one.
    NameRule("smollm", "chatml", priority=_VENDOR),
    NameRule("smollm2", "chatml", priority=_VENDOR),
    NameRule("qwen-chat", "qwen-chat", priority=_VENDOR),
    NameRule("qwen1-chat", "qwen-chat", priority=_VENDOR),
    NameRule("qwen2-instruct", "qwen-chat", priority=_VENDOR),
    NameRule("qwen2-5-instruct", "qwen2.5", priority=_VENDOR),
    NameRule("qwen3", "chatml", priority=_VENDOR),  # Qwen3-8B is the chat model, no default
    NameRule("qwen3-base", "raw"),  # beats the Qwen3 rule above
    NameRule("openhermes", "chatml"),
    NameRule("nous-hermes-2", "chatml"),
    NameRule("hermes-2", "chatml"),
    NameRule("hermes-3", "chatml"),
    NameRule("openorca", "chatml"),
    # Mistral-based instruct models.
    NameRule("mistral-instruct", "mistral-instruct", priority=_VENDOR),
    NameRule("mixtral-instruct", "mistral-instruct", priority=_VENDOR),
    NameRule("zephyr", "zephyr"),
    NameRule("tinyllama-chat", "zephyr"),
    # Base models: no template.
    NameRule("llama", "raw", priority=_BASE),
    NameRule("llama2", "raw", priority=_BASE),
    NameRule("llama3", "raw", priority=_BASE),
    NameRule("meta-llama", "raw", priority=_BASE),
    NameRule("open-llama", "raw", priority=_BASE),
    NameRule("chinese-llama", "raw", priority=_BASE),
    NameRule("codellama", "raw", priority=_BASE),
    NameRule("baichuan", "raw", priority=_BASE),
    NameRule("baichuan2", "raw", priority=_BASE),
    NameRule("redpajama", "raw", priority=_BASE),
    NameRule("redpajama-incite", "raw", priority=_BASE),
    NameRule("mistral", "raw", priority=_BASE),
    NameRule("qwen", "raw", priority=_BASE),
    NameRule("qwen1", "raw", priority=_BASE),
    NameRule("qwen2", "raw", priority=_BASE),
)
