"""The file syntaxes nexusify reads, below the model: TOML lines and tables, pip requirements
files, Dockerfiles, version constraints. Pure text work; nothing here knows the monorepo."""
