#!/bin/sh
# BROKEN on purpose (teaching example): reports success without releasing the lock that
# pre.sh holds, so the application stays unable to write until the holder's watchdog fires.
echo "post: done"
