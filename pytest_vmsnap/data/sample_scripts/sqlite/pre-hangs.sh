#!/bin/sh
# BROKEN on purpose (teaching example): waits for something that never comes, longer than
# timeoutInSeconds. The extension reports Pre-ScriptTimeout and leaves the script running.
sleep 600
