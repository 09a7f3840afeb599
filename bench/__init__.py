"""``make bench``: memory, throughput, cold-start, polling cost and scaling measurements on loopback.

Run ``python -m bench`` (the full 1 GiB run) or ``python -m bench --quick`` (64 MiB, fewer repeats).
Results go to ``bench/results.json``; big scratch files live in ``bench/out/`` and are deleted afterwards.
"""
