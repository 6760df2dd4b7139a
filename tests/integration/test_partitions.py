"""Usage partitioning (issue 5): a database migrated before partitioning is
converted with its rows; `tollgatectl usage maintain` creates months ahead
and detaches by the retention setting; the gateway settles into partitions."""

import shutil
import tempfile
from pathlib import Path

from harness import REPO, Postgres, ctl, stack, write_config


def test_existing_usage_is_converted_with_its_rows():
    with tempfile.TemporaryDirectory(prefix="tollgate-part-") as tmp, Postgres(tmp) as pg:
        config = Path(tmp) / "tollgate.json"
        write_config(config, pg.url(), "http://127.0.0.1:9", Path(tmp) / "tollgate.log")
        old = Path(tmp) / "sql-old"
        old.mkdir()
        for f in sorted((REPO / "sql").glob("00[1-5]_*.sql")):
            shutil.copy(f, old)
        ctl(config, "migrate", "--sql-dir", old)
        pg.psql("insert into tollgate.usage (request_id, ts, user_id, group_id, model,"
                " input_tokens, cost_micros) select gen_random_uuid(),"
                " timestamptz '2025-07-01 00:00+00' + i * interval '9 days', 'u', 'g',"
                " 'claude-haiku-4-5', i, 1000 + i from generate_series(1, 60) i")
        before = pg.psql("select count(*), sum(cost_micros) from tollgate.usage")[0]
        assert pg.psql("select relkind from pg_class where oid = 'tollgate.usage'::regclass") \
            == [["r"]]
        out = ctl(config, "migrate", "--sql-dir", REPO / "sql")
        assert "006_usage_partitions" in out and "007_reports" in out, out
        assert pg.psql("select relkind from pg_class where oid = 'tollgate.usage'::regclass") \
            == [["p"]]
        assert pg.psql("select count(*), sum(cost_micros) from tollgate.usage")[0] == before
        # every row sits in its month's partition, none in the default one
        assert pg.psql("select count(*) from tollgate.usage_default") == [["0"]]
        wrong = pg.psql("select count(*) from tollgate.usage u join pg_class c"
                        " on c.oid = u.tableoid where c.relname <>"
                        " tollgate.usage_partition_name((u.ts at time zone 'UTC')::date)")
        assert wrong == [["0"]], wrong
        # the report views were rebuilt over the partitioned table
        ctl(config, "report", "refresh")
        assert pg.psql("select sum(requests) from tollgate.chargeback_monthly") == [[before[0]]]


def test_usage_maintain_creates_ahead_and_detaches_by_retention():
    s = stack(tag="partitions-retention", processes=1, threads=2)  # it detaches this month
    out = s.ctl("usage", "maintain", "--ahead", "6",
                env={"TOLLGATE_NOW": "2031-05-03 00:00:00+00"})
    assert "7 created" in out, out
    s.psql("insert into tollgate.settings (key, value) values ('usage_retention_months', '2')"
           " on conflict (key) do update set value = excluded.value")
    out = s.ctl("usage", "maintain", env={"TOLLGATE_NOW": "2031-09-10 00:00:00+00"})
    detached = [line.split()[1] for line in out.splitlines() if line.startswith("detached")]
    assert {"usage_y2031m05", "usage_y2031m06"} <= set(detached), out
    assert "usage_y2031m07" not in detached, out
    attached = {r[0] for r in s.psql(
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
        " where i.inhparent = 'tollgate.usage'::regclass")}
    assert "usage_y2031m07" in attached and "usage_y2031m05" not in attached


def test_gateway_settles_into_the_month_partition():
    s = stack(tag="partitions-settle", processes=1, threads=2)
    status, headers, body = s.messages(s.key())
    assert status == 200, body
    rid = headers["x-request-id"]
    s.usage(rid)
    part = s.psql("select c.relname = tollgate.usage_partition_name((u.ts at time zone 'UTC')"
                  "::date) from tollgate.usage u join pg_class c on c.oid = u.tableoid"
                  " where u.request_id = '%s'" % rid)
    assert part == [["t"]], part
