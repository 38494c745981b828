-- Sample bookshop database created by `dbapi-runtime demo` on first run.
--
-- Tables
--   publishers    who prints the books
--   authors       writers, translators and illustrators
--   books         the catalogue (books.publisher_id -> publishers)
--   book_authors  books <-> authors, many-to-many, with the person's role
--   customers     people who buy books
--   orders        one row per checkout (orders.customer_id -> customers)
--   order_items   the books in each order (-> orders, -> books)
--   reviews       customer reviews of books (-> books, -> customers)
-- View
--   book_sales    copies sold and revenue per book (cancelled orders excluded)
--
-- Conventions: timestamps are ISO-8601 UTC text ('2024-03-01T10:15:00Z'),
-- dates are 'YYYY-MM-DD' text, booleans are 0/1, JSON columns hold JSON text.
-- Orders, order items and reviews are generated deterministically below,
-- so every fresh demo database has exactly the same contents.

PRAGMA foreign_keys = ON;

CREATE TABLE publishers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    country     TEXT NOT NULL,
    founded     INTEGER,
    website     TEXT
);

CREATE TABLE authors (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    birth_year  INTEGER,
    death_year  INTEGER,
    country     TEXT,
    bio         TEXT
);

CREATE TABLE books (
    id           INTEGER PRIMARY KEY,
    title        TEXT NOT NULL,
    subtitle     TEXT,
    isbn         TEXT NOT NULL UNIQUE,
    publisher_id INTEGER NOT NULL REFERENCES publishers (id),
    published_on DATE NOT NULL,
    pages        INTEGER NOT NULL CHECK (pages > 0),
    price        NUMERIC(10,2) NOT NULL CHECK (price >= 0),
    language     TEXT NOT NULL DEFAULT 'en',
    in_print     BOOLEAN NOT NULL DEFAULT 1 CHECK (in_print IN (0, 1)),
    tags         JSON NOT NULL DEFAULT '[]' CHECK (json_valid(tags))
);
CREATE INDEX books_publisher_id_idx ON books (publisher_id);

CREATE TABLE book_authors (
    book_id     INTEGER NOT NULL REFERENCES books (id),
    author_id   INTEGER NOT NULL REFERENCES authors (id),
    role        TEXT NOT NULL DEFAULT 'author'
                CHECK (role IN ('author', 'co-author', 'translator', 'illustrator')),
    PRIMARY KEY (book_id, author_id)
);
-- book_id is covered by the primary key
CREATE INDEX book_authors_author_id_idx ON book_authors (author_id);

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    email       TEXT NOT NULL UNIQUE,
    phone       TEXT,
    city        TEXT,
    country     TEXT NOT NULL,
    is_member   BOOLEAN NOT NULL DEFAULT 0 CHECK (is_member IN (0, 1)),
    joined_at   TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    is_gift     BOOLEAN NOT NULL DEFAULT 0 CHECK (is_gift IN (0, 1)),
    total       NUMERIC(10,2) NOT NULL DEFAULT 0,
    ordered_at  TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    shipped_at  TIMESTAMP
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);

CREATE TABLE order_items (
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    book_id     INTEGER NOT NULL REFERENCES books (id),
    quantity    INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
    unit_price  NUMERIC(10,2) NOT NULL,
    PRIMARY KEY (order_id, book_id)
);
-- order_id is covered by the primary key
CREATE INDEX order_items_book_id_idx ON order_items (book_id);

CREATE TABLE reviews (
    id                INTEGER PRIMARY KEY,
    book_id           INTEGER NOT NULL REFERENCES books (id),
    customer_id       INTEGER NOT NULL REFERENCES customers (id),
    rating            INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title             TEXT NOT NULL,
    body              TEXT,
    verified_purchase BOOLEAN NOT NULL DEFAULT 0 CHECK (verified_purchase IN (0, 1)),
    created_at        TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    UNIQUE (book_id, customer_id)
);
CREATE INDEX reviews_book_id_idx ON reviews (book_id);
CREATE INDEX reviews_customer_id_idx ON reviews (customer_id);

-- ------------------------------------------------------------ catalogue

INSERT INTO publishers (id, name, country, founded, website) VALUES
    (1, 'Harbor Lane Press',   'US', 1921, 'https://harborlane.example'),
    (2, 'Northfield Classics', 'GB', 1898, 'https://northfield.example'),
    (3, 'Blue Heron Books',    'CA', 1975, NULL),
    (4, 'Éditions du Pont',    'FR', 1954, 'https://editions-du-pont.example'),
    (5, 'Kestrel & Moss',      'GB', 2008, 'https://kestrelandmoss.example'),
    (6, 'Byteleaf Publishing', 'US', 2012, 'https://byteleaf.example');

INSERT INTO authors (id, name, birth_year, death_year, country, bio) VALUES
    (1,  'Jane Austen',            1775, 1817, 'GB', 'English novelist known for sharp social comedy.'),
    (2,  'Charles Dickens',        1812, 1870, 'GB', 'Victorian novelist and social critic.'),
    (3,  'Mark Twain',             1835, 1910, 'US', 'Pen name of Samuel Langhorne Clemens.'),
    (4,  'Mary Shelley',           1797, 1851, 'GB', 'Wrote Frankenstein, first published in 1818.'),
    (5,  'Herman Melville',        1819, 1891, 'US', NULL),
    (6,  'Leo Tolstoy',            1828, 1910, 'RU', NULL),
    (7,  'Fyodor Dostoevsky',      1821, 1881, 'RU', NULL),
    (8,  'Jules Verne',            1828, 1905, 'FR', 'Pioneer of adventure and science fiction.'),
    (9,  'H. G. Wells',            1866, 1946, 'GB', NULL),
    (10, 'Arthur Conan Doyle',     1859, 1930, 'GB', 'Creator of Sherlock Holmes.'),
    (11, 'Oscar Wilde',            1854, 1900, 'IE', NULL),
    (12, 'Virginia Woolf',         1882, 1941, 'GB', 'Modernist novelist and essayist.'),
    (13, 'F. Scott Fitzgerald',    1896, 1940, 'US', NULL),
    (14, 'Louisa May Alcott',      1832, 1888, 'US', NULL),
    (15, 'Bram Stoker',            1847, 1912, 'IE', NULL),
    (16, 'Charlotte Brontë',       1816, 1855, 'GB', NULL),
    (17, 'Emily Brontë',           1818, 1848, 'GB', NULL),
    (18, 'Lewis Carroll',          1832, 1898, 'GB', 'Pen name of Charles Lutwidge Dodgson.'),
    (19, 'Jack London',            1876, 1916, 'US', NULL),
    (20, 'Edith Wharton',          1862, 1937, 'US', NULL),
    (21, 'Joseph Conrad',          1857, 1924, 'PL', NULL),
    (22, 'Robert Louis Stevenson', 1850, 1894, 'GB', NULL),
    (23, 'Alexandre Dumas',        1802, 1870, 'FR', NULL),
    (24, 'Gustave Flaubert',       1821, 1880, 'FR', NULL),
    (25, 'Constance Garnett',      1861, 1946, 'GB', 'English translator of Russian literature.'),
    (26, 'John Tenniel',           1820, 1914, 'GB', 'Illustrator and political cartoonist for Punch.'),
    (27, 'Priya Raman',            1984, NULL, 'IN', 'Database engineer and conference speaker.'),
    (28, 'Jonas Lindqvist',        1979, NULL, 'SE', NULL),
    (29, 'Mei Lin Chen',           1988, NULL, 'SG', 'Builds APIs for public-sector data.'),
    (30, 'Tomás Herrera',          1975, NULL, 'ES', 'Chef, teacher and home baker.'),
    (31, 'Amara Okafor',           1991, NULL, 'NG', NULL),
    (32, 'Hannah Weiss',           1982, NULL, 'DE', NULL);

INSERT INTO books (id, title, subtitle, isbn, publisher_id, published_on, pages, price, language, in_print, tags) VALUES
    (1,  'Pride and Prejudice',                    NULL,                              '978-1-80000-107-7', 2, '2012-05-14', 432,  9.99,  'en', 1, '["classic","romance"]'),
    (2,  'Emma',                                   NULL,                              '978-1-80000-114-5', 2, '2015-09-01', 474,  8.99,  'en', 1, '["classic","romance","comedy"]'),
    (3,  'Sense and Sensibility',                  NULL,                              '978-1-80000-121-3', 2, '2011-03-22', 409,  8.49,  'en', 0, '["classic","romance"]'),
    (4,  'Great Expectations',                     NULL,                              '978-1-80000-128-2', 2, '2013-10-07', 544,  10.99, 'en', 1, '["classic","coming-of-age"]'),
    (5,  'A Tale of Two Cities',                   NULL,                              '978-1-80000-135-0', 1, '2009-06-30', 489,  9.49,  'en', 1, '["classic","historical"]'),
    (6,  'Oliver Twist',                           NULL,                              '978-1-80000-142-8', 1, '2014-02-18', 554,  9.99,  'en', 0, '["classic"]'),
    (7,  'Adventures of Huckleberry Finn',         NULL,                              '978-1-80000-149-7', 1, '2010-08-12', 366,  7.99,  'en', 1, '["classic","adventure"]'),
    (8,  'The Adventures of Tom Sawyer',           NULL,                              '978-1-80000-156-5', 3, '2016-04-05', 274,  7.49,  'en', 1, '["classic","adventure","children"]'),
    (9,  'Frankenstein',                           'The Modern Prometheus',           '978-1-80000-163-3', 2, '2018-10-31', 280,  11.99, 'en', 1, '["classic","gothic","science fiction"]'),
    (10, 'Moby-Dick',                              'The Whale',                       '978-1-80000-170-1', 1, '2008-11-14', 720,  14.99, 'en', 1, '["classic","adventure","sea"]'),
    (11, 'War and Peace',                          NULL,                              '978-1-80000-177-0', 5, '2017-01-20', 1296, 24.99, 'en', 1, '["classic","historical","translated"]'),
    (12, 'Anna Karenina',                          NULL,                              '978-1-80000-184-8', 5, '2014-07-09', 864,  16.99, 'en', 1, '["classic","romance","translated"]'),
    (13, 'Crime and Punishment',                   NULL,                              '978-1-80000-191-6', 5, '2012-11-11', 576,  13.99, 'en', 1, '["classic","psychological","translated"]'),
    (14, 'The Brothers Karamazov',                 NULL,                              '978-1-80000-198-5', 5, '2019-03-03', 824,  18.50, 'en', 1, '["classic","philosophical","translated"]'),
    (15, 'Twenty Thousand Leagues Under the Seas', NULL,                              '978-1-80000-205-0', 3, '2013-06-20', 432,  10.49, 'en', 1, '["classic","adventure","science fiction"]'),
    (16, 'Around the World in Eighty Days',        NULL,                              '978-1-80000-212-8', 3, '2020-09-15', 256,  8.99,  'en', 1, '["classic","adventure"]'),
    (17, 'The Time Machine',                       NULL,                              '978-1-80000-219-7', 3, '2021-02-02', 144,  6.99,  'en', 1, '["classic","science fiction"]'),
    (18, 'The War of the Worlds',                  NULL,                              '978-1-80000-226-5', 3, '2018-05-25', 224,  7.99,  'en', 0, '["classic","science fiction"]'),
    (19, 'The Hound of the Baskervilles',          NULL,                              '978-1-80000-233-3', 2, '2016-10-13', 256,  8.49,  'en', 1, '["classic","mystery"]'),
    (20, 'A Study in Scarlet',                     NULL,                              '978-1-80000-240-1', 2, '2015-01-08', 176,  6.49,  'en', 1, '["classic","mystery"]'),
    (21, 'The Picture of Dorian Gray',             NULL,                              '978-1-80000-247-0', 2, '2017-08-21', 272,  9.49,  'en', 1, '["classic","gothic"]'),
    (22, 'Mrs Dalloway',                           NULL,                              '978-1-80000-254-8', 5, '2022-05-12', 224,  12.99, 'en', 1, '["modernist"]'),
    (23, 'To the Lighthouse',                      NULL,                              '978-1-80000-261-6', 5, '2021-11-04', 240,  12.99, 'en', 1, '["modernist"]'),
    (24, 'The Great Gatsby',                       NULL,                              '978-1-80000-268-5', 1, '2021-04-10', 208,  10.99, 'en', 1, '["classic","jazz age"]'),
    (25, 'Little Women',                           NULL,                              '978-1-80000-275-3', 1, '2019-12-01', 759,  11.49, 'en', 1, '["classic","family"]'),
    (26, 'Dracula',                                NULL,                              '978-1-80000-282-1', 2, '2017-10-26', 488,  10.99, 'en', 1, '["classic","gothic","horror"]'),
    (27, 'Jane Eyre',                              'An Autobiography',                '978-1-80000-289-0', 2, '2016-04-21', 532,  9.99,  'en', 1, '["classic","gothic","romance"]'),
    (28, 'Wuthering Heights',                      NULL,                              '978-1-80000-296-8', 2, '2018-07-30', 416,  9.49,  'en', 0, '["classic","gothic"]'),
    (29, 'Alice''s Adventures in Wonderland',      NULL,                              '978-1-80000-303-3', 3, '2015-11-26', 192,  14.50, 'en', 1, '["classic","children","illustrated"]'),
    (30, 'The Call of the Wild',                   NULL,                              '978-1-80000-310-1', 3, '2014-09-09', 160,  6.99,  'en', 1, '["classic","adventure"]'),
    (31, 'The Age of Innocence',                   NULL,                              '978-1-80000-317-0', 5, '2020-03-17', 368,  11.99, 'en', 1, '["classic"]'),
    (32, 'Heart of Darkness',                      NULL,                              '978-1-80000-324-8', 5, '2013-02-14', 128,  5.99,  'en', 1, '["classic","novella"]'),
    (33, 'Strange Case of Dr Jekyll and Mr Hyde',  NULL,                              '978-1-80000-331-6', 2, '2019-10-05', 144,  6.49,  'en', 1, '["classic","gothic","novella"]'),
    (34, 'The Count of Monte Cristo',              NULL,                              '978-1-80000-338-5', 4, '2018-02-28', 1276, 19.99, 'en', 1, '["classic","adventure","translated"]'),
    (35, 'Madame Bovary',                          'Mœurs de province',               '978-1-80000-345-3', 4, '2021-06-16', 512,  13.50, 'fr', 1, '["classic","realism"]'),
    (36, 'Practical SQL Patterns',                 'Queries That Survive Production', '978-1-80000-352-1', 6, '2023-03-14', 384,  39.99, 'en', 1, '["programming","databases"]'),
    (37, 'Designing Data Services',                NULL,                              '978-1-80000-359-0', 6, '2024-01-23', 456,  44.95, 'en', 1, '["programming","api","databases"]'),
    (38, 'Cooking for Small Kitchens',             NULL,                              '978-1-80000-366-8', 3, '2022-09-06', 240,  24.00, 'en', 1, '["cooking"]'),
    (39, 'Weekend Bread',                          'Slow Loaves for Busy People',     '978-1-80000-373-6', 3, '2023-10-10', 192,  22.50, 'en', 1, '["cooking","baking"]'),
    (40, 'Stars Over Lagos',                       NULL,                              '978-1-80000-380-4', 5, '2024-09-17', 352,  17.99, 'en', 1, '["fiction","debut"]');

INSERT INTO book_authors (book_id, author_id, role) VALUES
    (1, 1, 'author'),   (2, 1, 'author'),   (3, 1, 'author'),
    (4, 2, 'author'),   (5, 2, 'author'),   (6, 2, 'author'),
    (7, 3, 'author'),   (8, 3, 'author'),
    (9, 4, 'author'),   (10, 5, 'author'),
    (11, 6, 'author'),  (11, 25, 'translator'),
    (12, 6, 'author'),  (12, 25, 'translator'),
    (13, 7, 'author'),  (13, 25, 'translator'),
    (14, 7, 'author'),  (14, 25, 'translator'),
    (15, 8, 'author'),  (16, 8, 'author'),
    (17, 9, 'author'),  (18, 9, 'author'),
    (19, 10, 'author'), (20, 10, 'author'),
    (21, 11, 'author'),
    (22, 12, 'author'), (23, 12, 'author'),
    (24, 13, 'author'), (25, 14, 'author'), (26, 15, 'author'),
    (27, 16, 'author'), (28, 17, 'author'),
    (29, 18, 'author'), (29, 26, 'illustrator'),
    (30, 19, 'author'), (31, 20, 'author'), (32, 21, 'author'),
    (33, 22, 'author'), (34, 23, 'author'), (35, 24, 'author'),
    (36, 27, 'author'), (36, 28, 'co-author'),
    (37, 29, 'author'), (37, 27, 'co-author'), (37, 32, 'co-author'),
    (38, 30, 'author'),
    (39, 30, 'author'), (39, 32, 'co-author'),
    (40, 31, 'author');

-- ------------------------------------------------------------ customers

INSERT INTO customers (id, first_name, last_name, email, phone, city, country, is_member, joined_at) VALUES
    (1,  'Olivia',   'Bennett',  'olivia.bennett@example.com',  '+1 503 555 0142',  'Portland',    'US', 1, '2022-02-14T09:12:00Z'),
    (2,  'Liam',     'O''Connor','liam.oconnor@example.org',    NULL,               'Dublin',      'IE', 0, '2022-03-01T17:45:00Z'),
    (3,  'Sofia',    'Rossi',    'sofia.rossi@example.net',     '+39 02 5550 1234', 'Milan',       'IT', 1, '2022-04-19T11:03:00Z'),
    (4,  'Noah',     'Schmidt',  'noah.schmidt@example.com',    NULL,               'Hamburg',     'DE', 0, '2022-05-07T08:30:00Z'),
    (5,  'Amelia',   'Clarke',   'amelia.clarke@example.org',   '+44 20 7946 0018', 'Leeds',       'GB', 1, '2022-06-22T19:20:00Z'),
    (6,  'Mateo',    'García',   'mateo.garcia@example.net',    NULL,               'Valencia',    'ES', 0, '2022-07-03T13:55:00Z'),
    (7,  'Aiko',     'Tanaka',   'aiko.tanaka@example.com',     '+81 6 5550 7788',  'Osaka',       'JP', 1, '2022-08-15T02:10:00Z'),
    (8,  'Ethan',    'Walker',   'ethan.walker@example.com',    '+1 512 555 0199',  'Austin',      'US', 0, '2022-09-09T21:40:00Z'),
    (9,  'Chloé',    'Martin',   'chloe.martin@example.org',    NULL,               'Lyon',        'FR', 1, '2022-10-30T10:05:00Z'),
    (10, 'Lucas',    'Silva',    'lucas.silva@example.net',     NULL,               'Recife',      'BR', 0, '2022-11-11T15:15:00Z'),
    (11, 'Emma',     'Johansson','emma.johansson@example.com',  '+46 31 555 0110',  'Gothenburg',  'SE', 1, '2022-12-01T07:50:00Z'),
    (12, 'Arjun',    'Mehta',    'arjun.mehta@example.org',     '+91 20 5550 4321', 'Pune',        'IN', 0, '2023-01-18T12:25:00Z'),
    (13, 'Grace',    'Kim',      'grace.kim@example.com',       '+1 206 555 0123',  'Seattle',     'US', 1, '2023-02-02T16:00:00Z'),
    (14, 'Oliver',   'Wright',   'oliver.wright@example.net',   NULL,               'Bristol',     'GB', 0, '2023-03-12T09:45:00Z'),
    (15, 'Fatima',   'Haddad',   'fatima.haddad@example.com',   '+1 416 555 0175',  'Toronto',     'CA', 1, '2023-04-04T18:35:00Z'),
    (16, 'Jakub',    'Nowak',    'jakub.nowak@example.org',     NULL,               'Kraków',      'PL', 0, '2023-05-21T06:20:00Z'),
    (17, 'Isabelle', 'Moreau',   'isabelle.moreau@example.net', NULL,               'Brussels',    'BE', 1, '2023-06-13T14:10:00Z'),
    (18, 'Daniel',   'Cohen',    'daniel.cohen@example.com',    '+1 312 555 0160',  'Chicago',     'US', 0, '2023-07-07T20:00:00Z'),
    (19, 'Nora',     'Virtanen', 'nora.virtanen@example.org',   NULL,               'Tampere',     'FI', 1, '2023-08-25T11:30:00Z'),
    (20, 'Samuel',   'Mensah',   'samuel.mensah@example.com',   '+233 30 555 0101', 'Accra',       'GH', 0, '2023-09-16T08:05:00Z'),
    (21, 'Hannah',   'Müller',   'hannah.mueller@example.net',  NULL,               'Graz',        'AT', 1, '2023-10-02T17:55:00Z'),
    (22, 'Ryan',     'Murphy',   'ryan.murphy@example.com',     '+1 617 555 0134',  'Boston',      'US', 0, '2023-11-20T13:40:00Z'),
    (23, 'Yuki',     'Sato',     'yuki.sato@example.org',       NULL,               'Sapporo',     'JP', 0, '2023-12-05T03:15:00Z'),
    (24, 'Ava',      'Thompson', 'ava.thompson@example.com',    '+61 8 5550 9876',  'Perth',       'AU', 1, '2024-01-09T22:30:00Z'),
    (25, 'Pedro',    'Alves',    'pedro.alves@example.net',     NULL,               'Porto',       'PT', 0, '2024-02-27T10:10:00Z'),
    (26, 'Zara',     'Ahmed',    'zara.ahmed@example.com',      '+44 161 496 0452', 'Manchester',  'GB', 1, '2024-03-18T15:45:00Z'),
    (27, 'Henrik',   'Larsen',   'henrik.larsen@example.org',   NULL,               'Aarhus',      'DK', 0, '2024-04-30T09:00:00Z'),
    (28, 'Mia',      'Novak',    'mia.novak@example.net',       NULL,               'Ljubljana',   'SI', 0, '2024-10-12T12:12:00Z'),
    (29, 'Leo',      'Fischer',  'leo.fischer@example.com',     '+41 61 555 0190',  'Basel',       'CH', 1, '2024-11-03T16:20:00Z'),
    (30, 'Ruby',     'Evans',    'ruby.evans@example.org',      NULL,               NULL,          'NZ', 0, '2024-12-01T04:45:00Z');

-- ------------------------------------------------------------ generated sales
--
-- 200 orders over 2024 from customers 1-27 (28-30 joined late and have not
-- ordered yet), 1 to 4 items each (500 order_items). Books 39 and 40 have no
-- sales yet. Every value below is computed from the row number n.

WITH RECURSIVE seq(n) AS (
    SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 200
),
gen AS (
    SELECT n,
           (n * 7 + n / 10) % 27 + 1 AS customer_id,
           CASE
               WHEN n % 17 = 0 THEN 'cancelled'
               WHEN n > 190    THEN 'pending'
               WHEN n > 178    THEN 'paid'
               WHEN n > 160    THEN 'shipped'
               ELSE 'delivered'
           END AS status,
           strftime('%Y-%m-%dT%H:%M:%SZ', '2024-01-02 08:00:00',
                    '+' || (n * 41 / 24) || ' days',
                    '+' || (n * 7 % 11) || ' hours',
                    '+' || (n * 13 % 60) || ' minutes') AS ordered_at
    FROM seq
)
INSERT INTO orders (id, customer_id, status, is_gift, total, ordered_at, shipped_at)
SELECT n,
       customer_id,
       status,
       n % 9 = 0,
       0,
       ordered_at,
       CASE WHEN status IN ('shipped', 'delivered')
            THEN strftime('%Y-%m-%dT%H:%M:%SZ', ordered_at, '+' || (1 + n % 4) || ' days', '+3 hours')
       END
FROM gen;

WITH RECURSIVE seq(n) AS (
    SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 200
),
item(n, k) AS (
    SELECT n, 1 FROM seq
    UNION ALL
    SELECT n, k + 1 FROM item WHERE k < 1 + n % 4
)
INSERT INTO order_items (order_id, book_id, quantity, unit_price)
SELECT item.n,
       b.id,
       1 + CASE WHEN item.n * item.k % 7 = 0 THEN 2
                WHEN (item.n + item.k) % 5 = 0 THEN 1
                ELSE 0 END,
       b.price
FROM item
JOIN books b ON b.id = (item.n * 7 + item.k * 13 + item.n * item.n % 9) % 38 + 1;

UPDATE orders
SET total = (SELECT ROUND(SUM(quantity * unit_price), 2)
             FROM order_items WHERE order_items.order_id = orders.id);

-- 100 reviews: every (book, customer) pair is distinct, ratings lean positive,
-- some reviews have a title only (body NULL).
WITH RECURSIVE seq(n) AS (
    SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 100
),
gen AS (
    SELECT n,
           n * 17 % 40 + 1 AS book_id,
           n * 11 % 30 + 1 AS customer_id,
           CAST(substr('5453452451435425435', n % 19 + 1, 1) AS INTEGER) AS rating
    FROM seq
)
INSERT INTO reviews (id, book_id, customer_id, rating, title, body, verified_purchase, created_at)
SELECT n,
       book_id,
       customer_id,
       rating,
       CASE rating
           WHEN 5 THEN CASE n % 2 WHEN 0 THEN 'Absolutely loved it' ELSE 'A new favourite' END
           WHEN 4 THEN CASE n % 2 WHEN 0 THEN 'Really enjoyable' ELSE 'Worth your time' END
           WHEN 3 THEN CASE n % 2 WHEN 0 THEN 'Decent' ELSE 'Mixed feelings' END
           WHEN 2 THEN CASE n % 2 WHEN 0 THEN 'Not for me' ELSE 'Hard going' END
           ELSE CASE n % 2 WHEN 0 THEN 'Disappointing' ELSE 'Gave up halfway' END
       END,
       CASE
           WHEN n % 4 = 0 THEN NULL
           WHEN rating = 5 THEN CASE n % 3
               WHEN 0 THEN 'Could not put it down. Already recommending it to friends.'
               WHEN 1 THEN 'Beautifully written and a joy to read, even the second time.'
               ELSE 'Lovely edition: good paper, clear print and useful notes.' END
           WHEN rating = 4 THEN CASE n % 2
               WHEN 0 THEN 'A great read with a few slow chapters in the middle.'
               ELSE 'Well paced and thoughtful. The ending stayed with me.' END
           WHEN rating = 3 THEN 'Some brilliant moments, but it dragged in places.'
           WHEN rating = 2 THEN 'I struggled to connect with the characters.'
           ELSE 'Tiny print and several typos in this edition.'
       END,
       EXISTS (SELECT 1 FROM order_items oi JOIN orders o ON o.id = oi.order_id
               WHERE oi.book_id = gen.book_id AND o.customer_id = gen.customer_id),
       strftime('%Y-%m-%dT%H:%M:%SZ', '2024-02-01 12:00:00',
                '+' || (n * 3) || ' days',
                '+' || (n * 37 % 600) || ' minutes')
FROM gen;

-- ------------------------------------------------------------ views

-- The CASTs give the computed columns a declared type (INT / REAL).
CREATE VIEW book_sales AS
SELECT b.id                                                         AS book_id,
       b.title                                                      AS title,
       CAST(COALESCE(SUM(s.quantity), 0) AS INTEGER)                AS copies_sold,
       CAST(ROUND(COALESCE(SUM(s.quantity * s.unit_price), 0), 2) AS REAL) AS revenue
FROM books b
LEFT JOIN (
    SELECT oi.book_id, oi.quantity, oi.unit_price
    FROM order_items oi
    JOIN orders o ON o.id = oi.order_id
    WHERE o.status <> 'cancelled'
) s ON s.book_id = b.id
GROUP BY b.id, b.title;
