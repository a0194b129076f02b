"""Russian date formats where Django's own (django/conf/locale/ru/formats.py) read wrong in the admin.

Found through FORMAT_MODULE_PATH; every format not named here stays Django's.

- MONTH_DAY_FORMAT: the admin's date hierarchy names a day "4 Декабрь" with Django's "j F" (the month in
  the nominative); a day of a month takes the genitive, "E": "4 декабря".
- DATETIME_FORMAT: the admin's columns and read-only fields showed "4 декабря 2026 г. 16:03" next to our
  own pages' "04.12.2026 16:03"; README promises the latter everywhere.
"""

MONTH_DAY_FORMAT = "j E"
DATETIME_FORMAT = "d.m.Y H:i"
