"""The peer of rowhook's catch-up benchmark: python-mysql-replication reading one binlog file.

    peer.py HOST PORT FILE MODE

MODE `decode`: every row of every rows event decoded (`event.rows`), the peer's full work.
MODE `skip`: `only_tables` = the mapped tables (threads, emails, notes), so rows of other
tables are skipped unparsed, as rowhook does.

Prints `rows seconds`, timed from before the connection to the end of FILE (the ROTATE to the
next file). On MariaDB 10.11: is_mariadb left False, log_file/log_pos/resume_stream given
(its is_mariadb=True path ignores the position and loses the stream's tail, as measured here).
"""

import sys
import time

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import RotateEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent


def main():
    host, port, log_file, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    started = time.perf_counter()
    extra = {"only_tables": ["threads", "emails", "notes"]} if mode == "skip" else {}
    stream = BinLogStreamReader(
        connection_settings={"host": host, "port": port, "user": "root", "passwd": ""},
        server_id=2_000_000 + (int(time.time()) % 100_000),
        log_file=log_file,
        log_pos=4,
        resume_stream=True,
        blocking=False,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, RotateEvent],
        **extra,
    )
    rows = 0
    for event in stream:
        if isinstance(event, RotateEvent):
            if not event.next_binlog.startswith(log_file):
                break  # the end of FILE
            continue
        for _row in event.rows:
            rows += 1
    elapsed = time.perf_counter() - started
    stream.close()
    print(rows, elapsed)


if __name__ == "__main__":
    main()
