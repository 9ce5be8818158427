"""Generation: models and where they come from, prompts, sampling, and the engines that sample (in-process transformers, an OpenAI-compatible server)."""
