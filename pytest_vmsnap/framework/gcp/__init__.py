"""Google Compute Engine application-consistent ("guest-flush") snapshots, as the guest agent
runs them (GoogleCloudPlatform/guest-agent, ``google_guest_agent/snapshot_listener.go``).

``config`` reads ``/etc/default/instance_configs.cfg`` the way the agent's ini reader does,
``discovery`` says where the two scripts live and what would stop the agent executing them,
``runner`` runs one script as the agent's ``run.WithOutputTimeout`` does, ``codes`` holds the
agent's error codes and the outcomes the harness adds, ``environment`` the scripts'
environment, ``cycle`` the outcome table and ``engine`` the interface every framework offers.
"""
