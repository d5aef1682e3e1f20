"""The per-client room limit under simultaneous requests, on the real
PostgreSQL and on an SQLite file.

The limit was counted before, and outside, the transaction that inserts the
room: parallel POSTs from one client all found the count under the limit and
all made a room.
"""

import pytest

from tests.support import run_race_script

THREADS = 12
ROUNDS = 4
PER_SESSION = 3
PER_IP = 4

# Runs in its own process (after tests.support.RACE_PRELUDE) with DATABASE_URL
# naming a fresh database. Each round, THREADS threads behind a barrier create
# a room at the same moment: in "session" rounds all from one session and
# address, in "ip" rounds from one address with a session each. Prints how
# many each round made.
RACE_SCRIPT = r"""
from digitsite.game import rooms, seats
from digitsite.game.rules import GameError

threads, rounds = int(sys.argv[1]), int(sys.argv[2])
connection.close()
report = []
for number in range(rounds):
    kind = "session" if number % 2 == 0 else "ip"
    barrier = threading.Barrier(threads)
    made, refused, errors = [], [], []

    def create(index):
        session = f"s-{number}" if kind == "session" else f"s-{number}-{index}"
        try:
            barrier.wait(timeout=120)
            made.append(rooms.create_room("", creator_ip=f"203.0.113.{number + 1}",
                                          creator_session=seats.hash_session(session)).code)
        except GameError as exc:
            (refused if exc.code == "too_many_rooms" else errors).append(str(exc))
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    workers = [threading.Thread(target=create, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    report.append({"kind": kind, "made": len(made), "refused": len(refused), "errors": errors})
print(json.dumps(report))
"""


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.services), "sqlite"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'race.sqlite3'}"
    return request.getfixturevalue("own_postgres_database")


def test_simultaneous_creations_by_one_client_stop_at_the_limit(database_url, tmp_path):
    """Hostile input: 12 creations at the same moment from one session (limit
    3), and from one address with 12 sessions (limit 4)."""
    report = run_race_script(RACE_SCRIPT, str(THREADS), str(ROUNDS),
                             database_url=database_url, tmp_path=tmp_path, env={
                                 "GAME_ROOMS_PER_SESSION": str(PER_SESSION),
                                 "GAME_ROOMS_PER_IP": str(PER_IP),
                                 "GAME_ROOMS_WINDOW_SECONDS": "3600",
                             })
    assert len(report) == ROUNDS
    for outcome in report:
        limit = PER_SESSION if outcome["kind"] == "session" else PER_IP
        assert outcome == {"kind": outcome["kind"], "made": limit,
                           "refused": THREADS - limit, "errors": []}, report
