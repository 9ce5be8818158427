"""An in-process judge: a local causal LM asked the same question, scored, not parsed.

The model sees the question through its chat template with the assistant turn opened, and
its next-token distribution is read: P(yes) and P(no) are the summed probabilities of their
first tokens in the usual spellings ("yes", " Yes", "YES", …). The verdict is yes when
P(yes) > P(no); the score stored is P(yes) / (P(yes) + P(no)), and the raw field keeps both
masses, so a judge that puts little mass on either answer is visible in audits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ccapp.engines.judges.base import JudgeInput, Verdict

SPELLINGS = {
    "yes": ("yes", "Yes", "YES", " yes", " Yes", " YES"),
    "no": ("no", "No", "NO", " no", " No", " NO"),
}


class HFJudge:
    cacheable = True

    def __init__(
        self, spec: str, model: Any, tokenizer: Any, *, batch_size: int = 16, version: str = ""
    ):
        self.spec = spec
        self.cache_id = f"{spec}#{version}"  # cached verdicts belong to these weights
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.ids = {answer: self._first_ids(words) for answer, words in SPELLINGS.items()}
        overlap = self.ids["yes"] & self.ids["no"]
        self.ids = {answer: ids - overlap for answer, ids in self.ids.items()}
        if not self.ids["yes"] or not self.ids["no"]:
            raise ValueError("the judge's tokenizer cannot tell 'yes' from 'no' by first token")

    def _first_ids(self, words: Sequence[str]) -> set[int]:
        ids = set()
        for word in words:
            encoded = self.tokenizer(word, add_special_tokens=False)["input_ids"]
            if encoded:
                ids.add(int(encoded[0]))
        return ids

    def judge(self, batch: Sequence[JudgeInput]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for start in range(0, len(batch), self.batch_size):
            verdicts.extend(self._score(batch[start : start + self.batch_size]))
        return verdicts

    def _score(self, batch: Sequence[JudgeInput]) -> list[Verdict]:
        import torch

        prompts = [
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": item.question()}],
                tokenize=False,
                add_generation_prompt=True,
            )
            for item in batch
        ]
        encoded = self.tokenizer(
            prompts, add_special_tokens=False, padding=True, return_tensors="pt"
        )
        device = next(self.model.parameters()).device
        mask = encoded["attention_mask"].to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(
                input_ids=encoded["input_ids"].to(device),
                attention_mask=mask,
                position_ids=positions,
                logits_to_keep=1,
            ).logits[:, -1, :]
        probs = torch.softmax(logits.float(), dim=-1).cpu()
        yes = probs[:, sorted(self.ids["yes"])].sum(dim=-1)
        no = probs[:, sorted(self.ids["no"])].sum(dim=-1)
        verdicts = []
        for p_yes, p_no in zip(yes.tolist(), no.tolist()):
            score = p_yes / (p_yes + p_no) if p_yes + p_no > 0 else 0.5
            label = "yes" if p_yes > p_no else "no"
            verdicts.append(
                Verdict(label, score=round(score, 6), raw=f"p_yes={p_yes:.4g} p_no={p_no:.4g}")
            )
        return verdicts
