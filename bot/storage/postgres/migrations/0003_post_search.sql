-- Word search over posts (`search_posts`), as SQLite's FTS5 index with the unicode61
-- tokenizer and remove_diacritics 2 finds them: a word is a run of letters and digits,
-- compared without case and without the diacritics of Latin letters (é is e, but ё stays ё
-- and й stays й, as in FTS5), so that both engines find the same posts for the same words.
--
-- The text is normalised by `dozor_search_text` (the same function for posts and for the
-- words searched) and indexed as a 'simple' tsvector: the normalised text holds nothing but
-- words and spaces, so PostgreSQL's parser finds exactly those words (never a host, an
-- e-mail or a hyphenated word, which would be split differently from FTS5).
--
-- Case and letter classes follow ICU's root collation when the server has it, so that a
-- database created with the C locale still folds and splits Cyrillic like FTS5; otherwise
-- the database's own locale. No extension is needed (unaccent would also fold ё and й).

DO $migration$
DECLARE
    folding text := 'default';
BEGIN
    IF EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN
        folding := 'und-x-icu';
    END IF;
    EXECUTE format(
        $function$
        CREATE FUNCTION dozor_search_text(body text) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        RETURN regexp_replace(
            lower(normalize(
                regexp_replace(normalize(body, NFD), '([A-Za-z])[\u0300-\u036F]+', '\1', 'g'),
                NFC
            ) COLLATE %1$I),
            '[^[:alnum:]]+', ' ', 'g'
        )
        $function$,
        folding
    );
END
$migration$;

CREATE FUNCTION dozor_search_vector(body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN to_tsvector('pg_catalog.simple'::regconfig, dozor_search_text(body));

CREATE INDEX posts_search ON posts USING gin (dozor_search_vector(text));
