FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY sql ./sql
RUN pip install --no-cache-dir '.[mysql,nats,mqtt,pubsub]'
USER nobody
ENTRYPOINT ["weatherpipe"]
