"""Cron schedules that start workflow runs by themselves.

Owns the Schedule and ScheduleFire tables, the slot arithmetic (slots.py), the one write path
(store.py), the scheduler every serving process runs (scheduler.py), the code declarations'
sync (declared.py), the Schedules pages and admin. It imports the executions core to start
runs; executions never imports it.
"""
