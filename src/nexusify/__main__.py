from nexusify.cli import main


def _run() -> int:
    try:
        return main()
    except KeyboardInterrupt:  # an interrupt that arrives after main's own handler ran
        return 130


raise SystemExit(_run())
