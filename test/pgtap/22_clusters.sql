-- pgTAP: throwaway clusters never collide.  test/run.sh, demo/run.sh and
-- test/bench/run.sh start theirs with run_in_cluster (test/lib/common.sh):
-- pg_virtualenv -t, a temporary cluster directory even as root, on a port
-- reserved by a lock file.  test/lib/two-clusters.sh starts two at the same
-- moment; both must come up, on different ports.
\set cl_file `mktemp -t ca-clusters-rows.XXXXXX`
\setenv CA_CL_FILE :cl_file
\! bash test/lib/two-clusters.sh > "$CA_CL_FILE"
BEGIN;
CREATE TEMP TABLE cl (what text, n int, answer text);
\copy cl FROM PROGRAM 'cat "$CA_CL_FILE" && rm -f "$CA_CL_FILE"'
SELECT plan(3);
SELECT alike((SELECT answer FROM cl WHERE n = 1), 'up %', 'the first of two clusters started at once answers');
SELECT alike((SELECT answer FROM cl WHERE n = 2), 'up %', 'the second of two clusters started at once answers');
SELECT isnt((SELECT answer FROM cl WHERE n = 1), (SELECT answer FROM cl WHERE n = 2), 'they run on different ports');
SELECT * FROM finish();
ROLLBACK;
