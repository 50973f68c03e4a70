"""Throwaway rows for the benchmark (``manage.py bench``, ``bench/data.py``): valid, distinct
genomes with their correct hashes, ready for bulk_create."""

import hashlib

from registry.genome import genome_hash
from registry.models import AgentVersion


def bench_genome(i: int) -> dict:
    return {
        "model_config": {"provider": "openai", "name": "gpt-4.1", "parameters": {"temperature": 0.2}},
        "prompt_bundle_hash": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest(),
        "tool_manifest": [
            {"name": "crm.lookup", "risk": "low", "data_scopes": ["crm:read"]},
            {"name": "email.send", "risk": "high"},
        ],
    }


def bench_version(i: int, **fields) -> AgentVersion:
    genome = bench_genome(i)
    return AgentVersion(
        genome=genome,
        genome_hash=genome_hash(genome),
        created_by="system:bench",
        **fields,
    )
