# Multi-stage: the builder installs from Nexus; the runtime stage gets only the venv.
# Build context: the service folder alone.
FROM python:3.11-slim-bookworm AS builder
WORKDIR /src
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY . .
ARG NEXUS_INDEX_URL=https://nexus.example.com/repository/pypi-group/simple/
RUN --mount=type=secret,id=netrc,target=/root/.netrc pip install --index-url "$NEXUS_INDEX_URL" --no-cache-dir .

FROM python:3.11-slim-bookworm
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
ARG APP_MODULE=app
ENV APP_MODULE=$APP_MODULE
EXPOSE 8000
CMD ["sh", "-c", "exec python -m \"$APP_MODULE\""]
