# django-axes ships no types; nothing of it is imported here: the django-stubs plugin loads
# every installed app's models module, so this one must exist for mypy.
