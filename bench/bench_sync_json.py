"""What a ``GET /v1/sync`` page costs to serialise: ``python -m bench.bench_sync_json``.

Times, per page of ``--entries`` message entries (1000: the largest page):

- ``build``: the entry dicts alone (``gateway.wire.entry_json``), which every variant pays;
- ``encoder``: FastAPI's path for a route returning a plain dict with no response model
  (``jsonable_encoder``, then ``json.dumps``), as the route was before it declared ``SyncOut``;
- ``model``: the route today: the dicts validated into ``SyncOut``, then dumped to JSON by
  pydantic's core with ``exclude_unset`` (what FastAPI does with a response model);
- ``raw``: a ``JSONResponse`` of the dicts, no validation at all (the floor).
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.encoders import jsonable_encoder
from pydantic import TypeAdapter
from starlette.responses import JSONResponse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.responses import SyncOut  # noqa: E402
from gateway.wire import entry_json  # noqa: E402
from inbox.core.models import Entry, EntryDraft, EntryKind  # noqa: E402

BASE_ID = 251_234_567_890_123_456
SYNC_OUT = TypeAdapter(SyncOut)


def page(entries: list[Entry]) -> dict[str, Any]:
    return {"entries": [entry_json(e) for e in entries],
            "cur_max_msg_id": str(entries[-1].id), "has_more": True}


def variants(entries: list[Entry]) -> dict[str, Callable[[], Any]]:
    def model() -> bytes:
        value = SYNC_OUT.validate_python(SyncOut.model_validate(page(entries)))
        return SYNC_OUT.dump_json(value, exclude_unset=True)

    return {
        "build": lambda: page(entries),
        "encoder": lambda: JSONResponse(jsonable_encoder(page(entries))).body,
        "model": model,
        "raw": lambda: JSONResponse(page(entries)).body,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--number", type=int, default=50)
    args = parser.parse_args()
    draft = EntryDraft(EntryKind.MESSAGE, BASE_ID, f"d:{BASE_ID}:{BASE_ID + 1}", BASE_ID,
                       BASE_ID + 7, 1_735_689_600_123, body="a message of some fifty bytes, "
                                                             "as chats go")
    entries = [Entry(BASE_ID + n, draft) for n in range(args.entries)]
    runs = variants(entries)
    outputs = {name: json.loads(run()) for name, run in runs.items() if name != "build"}
    assert len({json.dumps(o, sort_keys=True) for o in outputs.values()}) == 1, "outputs differ"
    for name, run in runs.items():
        best = min(timeit.repeat(run, number=args.number, repeat=5)) / args.number
        print(f"{name:8s} {best * 1000:7.2f} ms per {args.entries}-entry page")


if __name__ == "__main__":
    main()
