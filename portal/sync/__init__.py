"""Timetable feed to Outlook calendar: jobs now; feed, plan and engine follow."""
