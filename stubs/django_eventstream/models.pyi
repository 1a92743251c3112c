# The app's tables (event log, counters): the Django plugin loads every installed app's models,
# and this repository reads none of them.
