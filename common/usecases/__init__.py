"""The use cases: what the service does, called by the API routes and the worker loop alike.

Each function or class here receives the few collaborators it needs (stores, the queue, the
blob store), decides, and returns or raises; HTTP and message transport stay at the edges.
"""
