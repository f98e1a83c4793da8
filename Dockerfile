# One image for the worker, Flower and the sandbox. The Zixflow key is never baked in: it
# comes from the environment at run time.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY producer ./producer
COPY worker ./worker
COPY zixflow_queue ./zixflow_queue
RUN pip install '.[flower]' && useradd --create-home --uid 10001 app
USER app
CMD ["celery", "-A", "worker", "worker", "--loglevel=INFO", "-E"]
