"""The stores: each module implements ``MemoryBackend`` for one kind of storage.

Nothing is imported here: a store's driver (psycopg, redis, boto3) is imported only when
``urls.backend_for_url`` opens a URL of its scheme.
"""
