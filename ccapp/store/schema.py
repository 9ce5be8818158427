"""The store's schema as numbered migrations; `PRAGMA user_version` says which have run.

Append new migrations; never edit one that has shipped, because stores in the wild have
already run it. Each migration is a list of statements executed in one transaction.
"""

from __future__ import annotations


def _owned_by_run(parent: str, table: str) -> str:
    """The first columns of a table whose rows belong to a run through a parent row, written
    once: the statements that use it read, byte for byte, as they shipped."""
    return (
        "id INTEGER PRIMARY KEY,\n"
        "            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
        f"            {parent}_id INTEGER NOT NULL REFERENCES {table}(id) ON DELETE CASCADE"
    )


MIGRATIONS: list[list[str]] = [
    # 1: runs and everything C2-Eval produces.
    [
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL DEFAULT '',
            judge TEXT NOT NULL DEFAULT '',
            config TEXT NOT NULL DEFAULT '{}',
            fingerprint TEXT NOT NULL DEFAULT '',
            metrics TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            parent_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
            ccapp_version TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT
        )
        """,
        "CREATE INDEX runs_created ON runs(created_at)",
        "CREATE INDEX runs_parent ON runs(parent_id)",
        """
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            source_line INTEGER,
            request TEXT NOT NULL,
            harmful_response TEXT NOT NULL,
            safe_response TEXT,
            UNIQUE (run_id, idx)
        )
        """,
        # A cell is one (item, k): the prefill and the exact prompt the model saw. Its b
        # continuation paths share it, so the prompt is stored once, not b times.
        f"""
        CREATE TABLE cells (
            {_owned_by_run("item", "items")},
            k INTEGER NOT NULL,
            opener TEXT NOT NULL,
            prefill TEXT NOT NULL,
            rendered_prompt TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            short INTEGER NOT NULL DEFAULT 0,
            UNIQUE (run_id, item_id, k)
        )
        """,
        "CREATE INDEX cells_item ON cells(item_id)",
        f"""
        CREATE TABLE continuations (
            {_owned_by_run("cell", "cells")},
            path INTEGER NOT NULL,
            text TEXT NOT NULL,
            new_tokens INTEGER NOT NULL,
            finish_reason TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (cell_id, path)
        )
        """,
        "CREATE INDEX continuations_run ON continuations(run_id, cell_id)",
        """
        CREATE TABLE verdicts (
            id INTEGER PRIMARY KEY,
            continuation_id INTEGER NOT NULL REFERENCES continuations(id) ON DELETE CASCADE,
            judge TEXT NOT NULL,
            label TEXT NOT NULL,
            score REAL,
            raw TEXT,
            span_start INTEGER,
            span_end INTEGER,
            tokens_to_correction INTEGER,
            relapse INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            UNIQUE (continuation_id, judge)
        )
        """,
        "CREATE INDEX verdicts_judge ON verdicts(judge, label)",
    ],
    # 2: C2-Syn preference groups and DPO training logs.
    [
        # Six ranked responses are stored once per group; the 15 ordered pairs are derived
        # by the preference_pairs view instead of being stored as 15 rows of copied text.
        f"""
        CREATE TABLE syn_groups (
            {_owned_by_run("item", "items")},
            status TEXT NOT NULL,
            reason TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (run_id, item_id)
        )
        """,
        "CREATE INDEX syn_groups_run ON syn_groups(run_id, status)",
        """
        CREATE TABLE syn_responses (
            group_id INTEGER NOT NULL REFERENCES syn_groups(id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            role TEXT NOT NULL,
            text TEXT NOT NULL,
            cut_chars INTEGER,
            trigger TEXT,
            PRIMARY KEY (group_id, rank)
        )
        """,
        """
        CREATE VIEW preference_pairs AS
        SELECT g.run_id AS run_id, g.id AS group_id, i.request AS prompt,
               c.text AS chosen, r.text AS rejected,
               c.rank AS chosen_rank, r.rank AS rejected_rank
        FROM syn_groups g
        JOIN items i ON i.id = g.item_id
        JOIN syn_responses c ON c.group_id = g.id
        JOIN syn_responses r ON r.group_id = g.id AND c.rank < r.rank
        WHERE g.status = 'ok'
        """,
        """
        CREATE TABLE train_log (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            epoch REAL,
            loss REAL,
            reward_chosen REAL,
            reward_rejected REAL,
            reward_margin REAL,
            reward_accuracy REAL,
            learning_rate REAL,
            samples_per_second REAL,
            extra TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            UNIQUE (run_id, step)
        )
        """,
    ],
    # 3: which process runs a job, so a resume can refuse to race a live one.
    [
        "ALTER TABLE runs ADD COLUMN pid INTEGER",
        "ALTER TABLE runs ADD COLUMN host TEXT",
    ],
    # 4: judges: a verdict cache (same judge, question and text = no new call) and the
    # calls, tokens and estimated cost each judge spent on each run.
    [
        """
        CREATE TABLE verdict_cache (
            key TEXT PRIMARY KEY,
            judge TEXT NOT NULL,
            label TEXT NOT NULL,
            score REAL,
            raw TEXT,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE judge_usage (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            judge TEXT NOT NULL,
            calls INTEGER NOT NULL DEFAULT 0,
            cached INTEGER NOT NULL DEFAULT 0,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,
            PRIMARY KEY (run_id, judge)
        )
        """,
    ],
    # 5: how many tokens of the rendered prompt each cell's prefill takes (NULL in cells
    # stored before: their count was never measured).
    [
        "ALTER TABLE cells ADD COLUMN prefill_tokens INTEGER",
    ],
    # 6: Batch API jobs of a judge on a run, stored as soon as each exists (the requests file
    # uploaded, then the batch created), so a killed ccapp resumes the same batch instead of
    # paying for another. `state` is OpenAI's batch status, or `uploaded` (no batch yet),
    # `stored` (its verdicts are in the store) or `failed`; `settings` is what each request
    # asked (the token parameter, the budget, the temperature), for reading the answers.
    [
        """
        CREATE TABLE judge_batches (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            judge TEXT NOT NULL,
            input_file_id TEXT NOT NULL,
            batch_id TEXT,
            state TEXT NOT NULL,
            requests INTEGER NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            completed INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            output_file_id TEXT,
            error_file_id TEXT,
            error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (judge, batch_id)
        )
        """,
        "CREATE INDEX judge_batches_run ON judge_batches(run_id, judge, state)",
    ],
    # 7: how long a run has been running, its pauses left out. A run adds the
    # time since `running_since` to `seconds_running` when it stops running (paused, failed,
    # done), so "how long will an eval like that one take" is not its wall clock.
    [
        "ALTER TABLE runs ADD COLUMN running_since TEXT",
        "ALTER TABLE runs ADD COLUMN seconds_running REAL NOT NULL DEFAULT 0",
    ],
]

LATEST_VERSION = len(MIGRATIONS)
