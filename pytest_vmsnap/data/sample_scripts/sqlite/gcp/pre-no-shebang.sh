# BROKEN on purpose (teaching example): no '#!' line. Under Azure's `sh <script>` this ran;
# the guest agent executes the file itself, execve fails with "exec format error" (Go never
# falls back to a shell), the agent reports return code -1, UNHANDLED_SCRIPT_ERROR, and no
# snapshot is created. The fix is the first line of pre.sh: #!/bin/sh
set -eu
sqlite3 /var/lib/app/app.db 'PRAGMA wal_checkpoint(TRUNCATE);'
echo "pre: WAL checkpointed"
