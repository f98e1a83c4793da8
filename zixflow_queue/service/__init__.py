"""The HTTP service: `zixflow-queue serve`, enqueueing and following messages over HTTP.

Importing this package loads nothing heavy: FastAPI and uvicorn come with `app` and `server`.
"""
