-- An engagement id is used once, for good: a log holds at most one `engagement_started`. A workflow that
-- re-appends its own start (an activity retry) sends the same key and writes nothing (store/events.py); only a
-- second start under another key, an id reused by another engagement, trips this index.
--
-- Logs that already hold two starts (written before this migration, by an id reused after Temporal's retention
-- deleted the first workflow) cannot be rewritten (the log is append-only): they are left out of the index,
-- named in a warning, instead of failing every process that migrates. `engage start` refuses their ids all the
-- same, since it refuses any id the log knows.
DO $$
DECLARE
    reused text[];
BEGIN
    SELECT coalesce(array_agg(engagement_id ORDER BY engagement_id), '{}') INTO reused
    FROM (SELECT engagement_id FROM events WHERE type = 'engagement_started'
          GROUP BY engagement_id HAVING count(*) > 1) AS twice;
    IF cardinality(reused) = 0 THEN
        CREATE UNIQUE INDEX events_one_engagement_started ON events (engagement_id)
            WHERE type = 'engagement_started';
    ELSE
        RAISE WARNING 'engagements started twice before migration 0005, left out of its index: %', reused;
        EXECUTE format('CREATE UNIQUE INDEX events_one_engagement_started ON events (engagement_id)'
                       ' WHERE type = %L AND engagement_id <> ALL (%L::text[])', 'engagement_started', reused);
    END IF;
END $$;
