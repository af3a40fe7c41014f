"""qemu-guest-agent's fsfreeze hook (libvirt, Proxmox VE, oVirt): the engine (:mod:`.engine`)."""
