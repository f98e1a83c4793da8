"""The application layer of zixflow-queue: the CLI, the demo, the sandbox and the HTTP service.

The one package that may import both `producer` (the library web apps import) and `worker`
(the Celery workers).
"""
