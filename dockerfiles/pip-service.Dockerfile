# A service that installs its shared packages from Nexus (the shape `nexusify rewrite` writes).
# Build context: the service folder alone.
FROM python:3.11-slim-bookworm
WORKDIR /app
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
COPY . .
# The index (a Nexus group: hosted + PyPI proxy). Never put credentials in the URL.
ARG NEXUS_INDEX_URL=https://nexus.example.com/repository/pypi-group/simple/
# Credentials come from a BuildKit secret file, mounted for this step only.
RUN --mount=type=secret,id=netrc,target=/root/.netrc pip install --index-url "$NEXUS_INDEX_URL" --no-cache-dir .
ARG APP_MODULE=app
ENV APP_MODULE=$APP_MODULE
EXPOSE 8000
CMD ["sh", "-c", "exec python -m \"$APP_MODULE\""]
