-- Up Migration
-- Monthly partitions for mcp_logs and mcp_events (pg_partman is not available
-- everywhere we run, so these few lines do its job). Partitions are named
-- <table>_pYYYY_MM and cover [first day of month, first day of next month).

CREATE FUNCTION minimcp_ensure_month_partition(parent_table text, month_start date)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
  first_day date := date_trunc('month', month_start)::date;
  partition_name text := format('%s_p%s', parent_table, to_char(first_day, 'YYYY_MM'));
BEGIN
  IF parent_table NOT IN ('mcp_logs', 'mcp_events') THEN
    RAISE EXCEPTION 'not a partitioned MiniMCP table: %', parent_table;
  END IF;
  IF to_regclass(partition_name) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format(
    'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
    partition_name, parent_table,
    first_day::timestamptz, (first_day + interval '1 month')::date::timestamptz
  );
  RETURN true;
END;
$$;

-- Creates partitions from last month to `months_ahead` months ahead, and
-- drops those whose whole month is older than the retention (days; defaults
-- to the cleanup.retention_days setting). Safe to run concurrently.
CREATE FUNCTION minimcp_maintain_partitions(months_ahead integer DEFAULT 3, retention_days integer DEFAULT NULL)
RETURNS TABLE(action text, partition_name text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
  parent text;
  offset_months integer;
  this_month date := date_trunc('month', CURRENT_TIMESTAMP AT TIME ZONE 'UTC')::date;
  keep_days integer := retention_days;
  cutoff timestamptz;
  child record;
  month_end timestamptz;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('minimcp_maintain_partitions'));
  IF keep_days IS NULL THEN
    SELECT (value #>> '{}')::integer INTO keep_days FROM system_settings WHERE key = 'cleanup.retention_days';
    keep_days := COALESCE(keep_days, 30);
  END IF;
  cutoff := CURRENT_TIMESTAMP - make_interval(days => keep_days);

  FOREACH parent IN ARRAY ARRAY['mcp_logs', 'mcp_events'] LOOP
    FOR offset_months IN -1..months_ahead LOOP
      IF minimcp_ensure_month_partition(parent, (this_month + make_interval(months => offset_months))::date) THEN
        action := 'created';
        partition_name := format('%s_p%s', parent, to_char(this_month + make_interval(months => offset_months), 'YYYY_MM'));
        RETURN NEXT;
      END IF;
    END LOOP;

    FOR child IN
      SELECT c.relname
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = parent::regclass
        AND c.relname ~ ('^' || parent || '_p[0-9]{4}_[0-9]{2}$')
    LOOP
      month_end := (to_date(right(child.relname, 7), 'YYYY_MM') + interval '1 month')::date::timestamptz;
      IF month_end <= cutoff THEN
        EXECUTE format('DROP TABLE %I', child.relname);
        action := 'dropped';
        partition_name := child.relname;
        RETURN NEXT;
      END IF;
    END LOOP;
  END LOOP;
END;
$$;

SELECT minimcp_maintain_partitions(3, 36500);

-- Down Migration
DO $$
DECLARE
  child record;
BEGIN
  FOR child IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent IN ('mcp_logs'::regclass, 'mcp_events'::regclass)
  LOOP
    EXECUTE format('DROP TABLE %I', child.relname);
  END LOOP;
END;
$$;
DROP FUNCTION minimcp_maintain_partitions(integer, integer);
DROP FUNCTION minimcp_ensure_month_partition(text, date);
