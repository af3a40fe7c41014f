"""A pure-Python re-implementation of the Azure Linux VM backup pre/post-script framework.

Nothing in this package knows about loop devices, containers or databases: freeze and snapshot
are passed in as small interfaces (:mod:`.interfaces`).
"""
