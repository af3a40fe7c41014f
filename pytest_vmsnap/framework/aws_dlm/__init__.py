"""AWS Data Lifecycle Manager pre/post scripts, run through an SSM command document.

DLM (a managed service) decides when to run the document and what to do when it fails
(:mod:`.policy`, :mod:`.cycle`); the SSM agent on the instance runs the document's
``aws:runShellScript`` steps (:mod:`.document`, :mod:`.agent`). The engine is
:mod:`.engine`.
"""
