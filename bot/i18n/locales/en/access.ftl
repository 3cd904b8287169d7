# The refusal of a private deployment (ALLOWED_USERS): plain text, also a button's toast
# (at most 200 characters).
access-refused = Sorry — this Dozor is a private installation and answers only the people it was set up for. Please ask its owner for access.
