-- month_over_month.sql — each team's cost per month and the change from the
-- month before, from chargeback_monthly (run `tollgatectl report refresh` first
-- for the current month to be complete).
--   psql tollgate -f sql/reports/month_over_month.sql
select m.month, m.group_id,
       (m.cost / 1000000.0)::numeric(20, 6) as cost_usd,
       ((m.cost - lag(m.cost) over w) / 1000000.0)::numeric(20, 6) as change_usd,
       case when lag(m.cost) over w > 0
            then round(100.0 * (m.cost - lag(m.cost) over w) / lag(m.cost) over w, 1) end as change_pct
  from (select month, group_id, sum(cost_micros) as cost
          from tollgate.chargeback_monthly group by 1, 2) m
window w as (partition by m.group_id order by m.month)
 order by m.group_id, m.month;
