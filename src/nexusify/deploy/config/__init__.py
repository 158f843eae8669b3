"""The ``deploy`` table: its documented keys, the checker that reads it (file:line errors), its typed result.
"""
