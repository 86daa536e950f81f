-- Cluster-wide login roles the capture checks connect as (trust authentication). Run once per
-- cluster before the checks, by scripts/test-capture.sh and by the Swift capture tests.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['tenant_alice', 'automation_bot', 'app_emitter', 'su_not_automation'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        END IF;
    END LOOP;
    ALTER ROLE su_not_automation SUPERUSER;
END $$;
