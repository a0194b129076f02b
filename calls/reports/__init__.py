"""Call reports: the supervisors' dashboard (calls per day/hour, when clients call, operators, lines,
routing outcomes) with CSV downloads. Every figure is an SQL aggregate (``selectors``)."""
