"""A separate process appending decisions (concurrency and SIGKILL tests).

usage: python audit_appender.py URL COUNT TAG
Prints "ready" once the store is open, then one line per receipt.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parents[2]))  # conftest imports tests.postgres

from conftest import make_decision  # noqa: E402

from adapters.storage.audit_store import AuditStore  # noqa: E402
from engine.clock import WallClock  # noqa: E402
from engine.records.audit import RunMode  # noqa: E402


def main(url: str, count: int, tag: str) -> None:
    store = AuditStore.open(url, WallClock())
    print("ready", flush=True)
    account = "GEN" if tag == "a" else "REV"
    for i in range(count):
        receipt = store.append_decision(
            make_decision(i, account=account, kind=f"k{tag}"), RunMode.PAPER, "text"
        )
        print(receipt.seq, flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
