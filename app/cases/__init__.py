"""Finding people (政策找人): partner signals, alert rules, alerts, visit tasks and applications.

Signals from partner departments (医保, 残联, ...) are matched to a person by a keyed hash of the
ID number (app.cases.identity), evaluated against the alert rules (data, app.cases.rules); an alert
makes a `visit_alert` task for the caseworkers of the person's region, due at the end of the next
working day (app.workdays). One application from the mini-program makes a `verify_application`
task in the applicant's village. No HTTP here: the edge is miniprogram_api/{tasks,applications,
alert_rules,cases_stats}.py.
"""
