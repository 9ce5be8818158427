"""DPO: preference training with TRL (full or LoRA) on stored or exported pairs."""
