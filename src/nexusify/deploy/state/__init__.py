"""What deploy remembers: live and in-flight versions per service, the lock and the history, in the
working copy and (environments with a proxy container) on the hosts; and ``status``, read from the hosts.
"""
