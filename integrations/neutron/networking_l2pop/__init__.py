"""networking-l2pop: Neutron's l2population job, handed to the l2pop server.

Data flow::

    Neutron API / agent RPC ──► ML2 plugin ──► L2popServerMechanismDriver
                                                 │ *_precommit: journal.record(row)
                                                 ▼   (same DB transaction as the change)
                                           l2pop_journal (Neutron's DB)
                                                 │ *_postcommit / timer: journal.Journal.kick()
                                                 ▼
                                 Journal.deliver_pending(): oldest row first, under a lease
                                                 │ translate.requests(row) -> client.L2popClient
                                                 ▼
                                          l2pop server REST API ──► casts to Neutron's agents
"""
