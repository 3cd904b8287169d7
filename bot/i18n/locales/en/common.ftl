# Texts several commands share. Arguments are HTML-escaped by the caller.

example-query = Oreshnik OR "INF Treaty" -лещина
query-invalid =
    ⚠️ I can't use that query: { $error }.
    A correct example: { $example }
handler-failed = ⚠️ Something went wrong while I handled that message, and it has been logged (update { $update }). Please try again in a minute; /help lists what I can do.
# Plain text (also a button's toast: 200 characters, no HTML).
slow-down = ⏳ Slow down — I skipped some of your messages; send the command again in a few seconds.
more-items = … and { $count } more

# What is wrong with a query (the parser's findings), then where.
query-error-at = { $error } (at character { $position })
query-error-open-quote = a quote is opened but never closed
query-error-open-regex = a /regex/ is opened but never closed
query-error-unmatched-close = a ) has no matching (
query-error-or-after = OR needs something to search for after it
query-error-or-before = OR needs something to search for before it
query-error-and-sides = AND needs something to search for on both sides
query-error-ends-early = the query ends where a term was expected
query-error-empty-group = ( ) holds nothing to search for
query-error-not-after = { $operator } needs a term to exclude after it
query-error-too-deep = brackets nest deeper than { $limit } levels
query-error-open-bracket = a ( is never closed
query-error-empty-quotes = the quotes hold no letters or digits
query-error-too-many-terms = the query has more than { $limit } terms
query-error-too-many-regexes = a query may hold at most { $limit } /regex/ terms
query-error-star-inside = * may only end a word (word*)
query-error-no-letters = { $term } has no letters or digits to search for
query-error-exact-and-prefix = use either =word or word*, not both
query-error-prefix-compound = word* takes a single word, not a compound
query-error-prefix-short = word* needs at least { $limit } letters before the *
query-error-regex-empty = the /regex/ is empty
query-error-regex-bytes = \C (any byte) is not allowed in a /regex/
query-error-regex-long = a /regex/ may be at most { $limit } characters
query-error-regex-invalid = the /regex/ is not valid: { $reason }
query-error-regex-complex = the /regex/ is too complex to run on every post (size { $size }, at most { $limit }); use fewer or smaller repetitions such as {"{"}n{"}"}
query-error-empty = the query is empty
query-error-too-long = the query is longer than { $limit } characters
query-error-only-excludes = the query only excludes; add something to look for, e.g. Oreshnik -hazel

# Notices to Dozor's administrators.
alarm-cannot-record = ⚠️ Dozor: cannot record sent messages in the database ({ $error }); sending is paused until it can (is the disk full?)
alarm-sending-resumed = ✅ Dozor: sending resumed; { $count ->
        [one] { $count } sent message recorded
       *[other] { $count } sent messages recorded
    }
alarm-source-stopped = ⚠️ Source { $source } stopped: { $problem }

# Why the regex engine (RE2) refused a /regex/; the part of it concerned follows as code.
regex-reason-escape = an unknown escape sequence
regex-reason-class-range = an invalid character range or class
regex-reason-class = an invalid character class
regex-reason-missing-bracket = a [ is never closed
regex-reason-missing-paren = a ( is never closed
regex-reason-unexpected-paren = a ) has no matching (
regex-reason-trailing-backslash = it ends with a lone \
regex-reason-no-repeat-argument = a repetition operator has nothing to repeat
regex-reason-repeat-size = an invalid repetition count (at most 1000)
regex-reason-bad-repeat = repetition operators in a row
regex-reason-perl-operator = an unsupported (? group
regex-reason-utf8 = invalid characters
regex-reason-named-group = an invalid named group
