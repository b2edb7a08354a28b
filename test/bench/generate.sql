-- The data generator: customers :lo .. :hi - 1 with an omnichannel history,
-- loaded through the product's own posting path (plain INSERTs into the
-- order, line and payment tables, so the C triggers book every event).
-- Deterministic: every choice is a hash of the customer and order number.
-- Run it in one transaction (psql -1): the deferred total check runs at commit.
--   per customer: a first and last name, email, loyalty card, for 60% a
--   phone and for half a marketplace buyer id (the keywords of the search
--   workload, test/bench/search.sql); 2-6 orders over 18 months on web,
--   app, stores, marketplaces and the hotline; ~10% in CHF; invoices mostly
--   paid, some late, some not at all (overdue); a few cancellations; returns
--   of recent orders at the tills.  About 10 ledger rows each.
--   loyalty on (test/bench/loyalty.sql): every line earns per rule, the store
--   regulars who come back online get the reactivation credit, cancellations
--   take points back, a tenth of the customers redeem half of their points.
\set ON_ERROR_STOP on
SET LOCAL search_path = customer_account, public;
SELECT NOT EXISTS (SELECT 1 FROM customer_account.loyalty_terms) AS need_loyalty \gset
\if :need_loyalty
\ir loyalty.sql
\endif
-- names: a first and a last name picked by hash (200 x 500, transliterated,
-- as many shops store them); phones for 60% (i % 5 < 3), written
-- internationally (+49 / 0049, the Swiss customers +41); every customer a
-- loyalty card (9276 and the id in 8 digits, stored without separators as
-- link_identity() would), every second one a marketplace buyer id (ebay or
-- amazon, an opaque id from a bijection of the customer id)
CREATE TEMP TABLE gen_people ON COMMIT DROP AS
SELECT i, n.first_names[1 + (hashint8(i * 3 + 1) & 2147483647) % array_length(n.first_names, 1)] || ' '
          || n.last_names[1 + (hashint8(i * 5 + 2) & 2147483647) % array_length(n.last_names, 1)] AS full_name,
       CASE WHEN i % 5 >= 3 THEN NULL
            WHEN i % 10 = 7 THEN '+41 ' || (ARRAY['44', '61', '31', '22', '79'])[1 + (hashint8(i * 11 + 4) & 2147483647) % 5]
                                 || ' ' || (1000000 + i)
            ELSE CASE WHEN i % 2 = 0 THEN '+49 ' ELSE '0049 ' END
                 || (ARRAY['30', '40', '89', '221', '69', '711', '211', '231', '201', '341', '351', '511', '911', '421',
                           '228', '151', '160', '170', '171', '176'])[1 + (hashint8(i * 11 + 4) & 2147483647) % 20]
                 || ' ' || (1000000 + i) END AS phone
FROM generate_series(:lo::bigint, :hi::bigint - 1) i,
     (SELECT ARRAY[
    'Anna', 'Maria', 'Emma', 'Mia', 'Hannah', 'Sofia', 'Lena', 'Lea', 'Emilia', 'Marie', 'Lina', 'Ella',
    'Clara', 'Leonie', 'Amelie', 'Luisa', 'Johanna', 'Laura', 'Sophie', 'Nele', 'Lara', 'Julia', 'Charlotte', 'Greta',
    'Ida', 'Frieda', 'Mila', 'Paula', 'Lisa', 'Sarah', 'Katharina', 'Jana', 'Lea-Sophie', 'Elena', 'Helena', 'Theresa',
    'Franziska', 'Carolin', 'Nina', 'Vanessa', 'Sabine', 'Petra', 'Andrea', 'Claudia', 'Susanne', 'Monika', 'Birgit', 'Kerstin',
    'Stefanie', 'Nicole', 'Sandra', 'Martina', 'Heike', 'Gabriele', 'Ute', 'Ursula', 'Renate', 'Ingrid', 'Karin', 'Brigitte',
    'Christa', 'Elke', 'Silke', 'Anja', 'Tanja', 'Melanie', 'Jessica', 'Jennifer', 'Daniela', 'Simone', 'Bettina', 'Doris',
    'Marion', 'Angelika', 'Beate', 'Barbara', 'Christine', 'Eva', 'Inge', 'Helga', 'Ayse', 'Fatma', 'Elif', 'Zeynep',
    'Emine', 'Merve', 'Leyla', 'Aleksandra', 'Katarzyna', 'Agnieszka', 'Magdalena', 'Olga', 'Natalia', 'Irina', 'Svetlana', 'Giulia',
    'Francesca', 'Chiara', 'Lucia', 'Ana', 'Ben', 'Paul', 'Jonas', 'Leon', 'Finn', 'Elias', 'Noah', 'Luis',
    'Felix', 'Lukas', 'Maximilian', 'Henry', 'Emil', 'Anton', 'Theo', 'Jakob', 'Moritz', 'Oskar', 'Matteo', 'David',
    'Niklas', 'Tim', 'Tom', 'Jan', 'Philipp', 'Julian', 'Alexander', 'Simon', 'Fabian', 'Florian', 'Tobias', 'Sebastian',
    'Dominik', 'Marcel', 'Kevin', 'Dennis', 'Patrick', 'Sven', 'Marco', 'Kai', 'Thomas', 'Michael', 'Andreas', 'Stefan',
    'Christian', 'Markus', 'Frank', 'Peter', 'Klaus', 'Juergen', 'Wolfgang', 'Uwe', 'Dieter', 'Manfred', 'Bernd', 'Ralf',
    'Joerg', 'Werner', 'Horst', 'Hans', 'Karl', 'Heinz', 'Guenter', 'Gerhard', 'Helmut', 'Rainer', 'Holger', 'Dirk',
    'Olaf', 'Volker', 'Mehmet', 'Mustafa', 'Ahmet', 'Ali', 'Hasan', 'Murat', 'Emre', 'Can', 'Piotr', 'Tomasz',
    'Krzysztof', 'Marek', 'Pawel', 'Dmitri', 'Sergej', 'Alexej', 'Giuseppe', 'Luca', 'Marco-Antonio', 'Jose', 'Carlos', 'Miguel',
    'Ivan', 'Nikola', 'Stefano', 'Omar', 'Yusuf', 'Karim', 'Adam', 'Oliver'] AS first_names, ARRAY[
    'Mueller', 'Schmidt', 'Schneider', 'Fischer', 'Weber', 'Meyer', 'Wagner', 'Becker', 'Schulz', 'Hoffmann', 'Schaefer', 'Koch',
    'Bauer', 'Richter', 'Klein', 'Wolf', 'Schroeder', 'Neumann', 'Schwarz', 'Zimmermann', 'Braun', 'Krueger', 'Hofmann', 'Hartmann',
    'Lange', 'Schmitt', 'Werner', 'Schmitz', 'Krause', 'Meier', 'Lehmann', 'Schmid', 'Schulze', 'Maier', 'Koehler', 'Herrmann',
    'Koenig', 'Walter', 'Mayer', 'Huber', 'Kaiser', 'Fuchs', 'Peters', 'Lang', 'Scholz', 'Moeller', 'Weiss', 'Jung',
    'Hahn', 'Schubert', 'Vogel', 'Friedrich', 'Keller', 'Guenther', 'Frank', 'Berger', 'Winkler', 'Roth', 'Beck', 'Lorenz',
    'Baumann', 'Franke', 'Albrecht', 'Schuster', 'Simon', 'Ludwig', 'Boehm', 'Winter', 'Kraus', 'Martin', 'Schumacher', 'Kraemer',
    'Vogt', 'Stein', 'Jaeger', 'Otto', 'Sommer', 'Gross', 'Seidel', 'Heinrich', 'Brandt', 'Haas', 'Schreiber', 'Graf',
    'Schulte', 'Dietrich', 'Ziegler', 'Kuhn', 'Kuehn', 'Pohl', 'Engel', 'Horn', 'Busch', 'Bergmann', 'Thomas', 'Voigt',
    'Sauer', 'Arnold', 'Wolff', 'Pfeiffer', 'Ernst', 'Lindner', 'Hartung', 'Bock', 'Brinkmann', 'Ebert', 'Barth', 'Grimm',
    'Herzog', 'Seifert', 'Lenz', 'Kremer', 'Boettcher', 'Paul', 'Fritz', 'Kuhlmann', 'Kaufmann', 'Hess', 'Gerlach', 'Michel',
    'Schmitz-Berg', 'Beyer', 'Walther', 'Thiel', 'Reuter', 'Schoenfeld', 'Voss', 'Kessler', 'Buettner', 'Koenigs', 'Sander', 'Schuetz',
    'Ottmann', 'Weiss-Nowak', 'Pietsch', 'Noack', 'Kraft', 'Wilhelm', 'Wendt', 'Frey', 'Schenk', 'Marx', 'Roemer', 'Hermann',
    'Schmitt-Lenz', 'Kurz', 'Bayer', 'Dreyer', 'Hesse', 'Konrad', 'Lehnert', 'Schoen', 'Ritter', 'Menzel', 'Vetter', 'Fiedler',
    'Weise', 'Kolb', 'Thomsen', 'Hagen', 'Jansen', 'Petersen', 'Hansen', 'Nielsen', 'Janssen', 'Bruns', 'Gerdes', 'Harms',
    'Ahrens', 'Frerichs', 'Hinrichs', 'Oltmanns', 'Meyer-Hansen', 'Behrens', 'Luebbers', 'Cordes', 'Brandes', 'Rathjen', 'Claussen', 'Jacobs',
    'Eckert', 'Hein', 'Albers', 'Nowak', 'Kowalski', 'Wojcik', 'Kaminski', 'Lewandowski', 'Zielinski', 'Szymanski', 'Wozniak', 'Dabrowski',
    'Kozlowski', 'Jankowski', 'Mazur', 'Kwiatkowski', 'Krawczyk', 'Piotrowski', 'Grabowski', 'Pawlak', 'Yilmaz', 'Kaya', 'Demir', 'Sahin',
    'Celik', 'Yildiz', 'Yildirim', 'Ozturk', 'Aydin', 'Ozdemir', 'Arslan', 'Dogan', 'Kilic', 'Aslan', 'Cetin', 'Kara',
    'Korkmaz', 'Kurt', 'Ozkan', 'Simsek', 'Rossi', 'Russo', 'Ferrari', 'Esposito', 'Bianchi', 'Romano', 'Colombo', 'Ricci',
    'Marino', 'Greco', 'Bruno', 'Gallo', 'Conti', 'DeLuca', 'Mancini', 'Costa', 'Giordano', 'Rizzo', 'Lombardi', 'Moretti',
    'Ivanov', 'Petrov', 'Smirnov', 'Kuznetsov', 'Popov', 'Volkov', 'Sokolov', 'Lebedev', 'Kozlov', 'Novikov', 'Morozov', 'Pavlov',
    'Fedorov', 'Orlov', 'Makarov', 'Nikolaev', 'Zakharov', 'Sorokin', 'Vasiliev', 'Romanov', 'Garcia', 'Martinez', 'Rodriguez', 'Lopez',
    'Gonzalez', 'Fernandez', 'Sanchez', 'Perez', 'Gomez', 'Diaz', 'Silva', 'Santos', 'Pereira', 'Oliveira', 'Ferreira', 'Alves',
    'Rodrigues', 'Sousa', 'Carvalho', 'Lima', 'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Miller', 'Davis', 'Wilson',
    'Taylor', 'Anderson', 'Moore', 'Jackson', 'White', 'Harris', 'Clark', 'Lewis', 'Walker', 'Hall', 'Allen', 'Young',
    'Horvat', 'Kovacevic', 'Babic', 'Maric', 'Juric', 'Novak', 'Petrovic', 'Jovanovic', 'Nikolic', 'Markovic', 'Popovic', 'Djordjevic',
    'Stojanovic', 'Ilic', 'Pavlovic', 'Milosevic', 'Hodzic', 'Begic', 'Kovac', 'Tomic', 'Nguyen', 'Tran', 'Pham', 'Hoang',
    'Huynh', 'Phan', 'Vuong', 'Dang', 'Truong', 'Dinh', 'Hassan', 'Haddad', 'Khalil', 'Mansour', 'Nasser', 'Saleh',
    'Rahman', 'Hussein', 'Abbas', 'Karimi', 'Adler', 'Ammann', 'Andres', 'Apel', 'Appel', 'Baer', 'Bach', 'Bader',
    'Baldauf', 'Bartels', 'Bauch', 'Baur', 'Bechtold', 'Beckmann', 'Behr', 'Benz', 'Berg', 'Bergen', 'Bieber', 'Binder',
    'Blank', 'Blum', 'Bode', 'Bohn', 'Borchert', 'Bosch', 'Brand', 'Brauer', 'Brenner', 'Buchholz', 'Buck', 'Burger',
    'Buhl', 'Christ', 'Conrad', 'Dahl', 'Damm', 'Decker', 'Diehl', 'Dietz', 'Dorn', 'Drescher', 'Eberhardt', 'Ehlers',
    'Eichhorn', 'Eder', 'Engels', 'Erdmann', 'Falk', 'Feld', 'Fink', 'Fleischer', 'Forster', 'Freitag', 'Freund', 'Fricke',
    'Friedel', 'Fromm', 'Funk', 'Gabriel', 'Gaertner', 'Geiger', 'Gebhardt', 'Geisler', 'Gerber', 'Giese', 'Glaser', 'Goetz',
    'Goldmann', 'Gottschalk', 'Graef', 'Greiner', 'Gruber', 'Gruen', 'Haag', 'Haase', 'Hagemann', 'Hammer', 'Hansel', 'Hauser',
    'Heck', 'Hecht', 'Heil', 'Heinz', 'Heller', 'Hempel', 'Henke', 'Henning', 'Hentschel', 'Hering', 'Hermes', 'Heuer',
    'Hildebrandt', 'Hinz', 'Hirsch', 'Hoch', 'Hofer', 'Holz', 'Hopf', 'Hummel', 'Husmann', 'Ihle', 'Imhof', 'Jahn',
    'Jakob', 'Jost', 'Jordan', 'Junker', 'Kaiserling', 'Kamm', 'Karl', 'Kastner', 'Kellner', 'Kern', 'Kiefer', 'Kirchner',
    'Kirsch', 'Klaus', 'Klose', 'Knapp', 'Knoll', 'Kober', 'Koehn', 'Kopp', 'Korn', 'Krebs', 'Kroll', 'Kunz',
    'Lamprecht', 'Landgraf', 'Laub', 'Lauer', 'Lechner', 'Lemke', 'Lindemann', 'Link', 'Loeffler', 'Lutz', 'Mack', 'Mann',
    'Marquardt', 'Maurer', 'Mertens', 'Metzger', 'Michels', 'Mohr', 'Moser', 'Nagel', 'Naumann', 'Neubauer', 'Niemann', 'Nolte',
    'Obermeier', 'Oswald', 'Pape', 'Pfaff', 'Philipp', 'Pilz', 'Probst', 'Rademacher'] AS last_names) n;
INSERT INTO customer_account.customer (customer_id, full_name, email, phone, language, customer_since)
SELECT i, full_name, 'c' || i || '@example.com', phone, CASE WHEN i % 4 = 0 THEN 'en' ELSE 'de' END,
       now() - interval '1 day' * (30 + (hashint8(i) & 1023))
FROM gen_people;
INSERT INTO customer_account.customer_identity (kind, value, customer_id)
SELECT 'email', 'c' || i || '@example.com', i FROM gen_people
UNION ALL
SELECT 'phone', CASE WHEN phone LIKE '+%' THEN '+' ELSE '' END || regexp_replace(phone, '[^0-9]', '', 'g'), i
FROM gen_people WHERE phone IS NOT NULL
UNION ALL
SELECT 'loyalty_card', '9276' || lpad(i::text, 8, '0'), i FROM gen_people
UNION ALL
SELECT 'marketplace', CASE WHEN i % 4 = 0 THEN 'ebay:' ELSE 'amazon:' END
                      || 'b' || lpad(to_hex((i * 2654435761) % 4294967296), 8, '0'), i
FROM gen_people WHERE i % 2 = 0;
DROP TABLE gen_people;

CREATE TEMP TABLE gen_orders ON COMMIT DROP AS
SELECT 'G' || i || '-' || k AS order_no, i AS customer_id, k,
       CASE WHEN i % 10 = 7 THEN 'web-ch'
            ELSE (ARRAY['web-de', 'web-de', 'web-at', 'app-de', 'store-berlin', 'store-hamburg', 'store-munich',
                        'ebay', 'amazon', 'hotline'])[1 + ((h >> 3) & 1023) % 10] END AS channel,
       h, now() - interval '1 hour' * (24 + ((h >> 13) & 16383) % 13000) AS placed_at,
       1 + ((h >> 27) & 3) % 3 AS nlines
FROM generate_series(:lo::bigint, :hi::bigint - 1) i,
     LATERAL generate_series(1, 2 + (hashint8(i * 7) & 7) % 5) k,
     LATERAL (SELECT abs(hashint8(i * 100 + k)) AS h) x;
ALTER TABLE gen_orders ADD COLUMN method text, ADD COLUMN currency text;
UPDATE gen_orders SET currency = CASE channel WHEN 'web-ch' THEN 'CHF' ELSE 'EUR' END,
    method = CASE
        WHEN channel LIKE 'store-%' THEN (ARRAY['cash', 'credit_card', 'invoice'])[1 + (h >> 40) % 3]
        WHEN channel IN ('ebay', 'amazon') THEN 'marketplace'
        WHEN channel = 'hotline' THEN (ARRAY['invoice', 'prepayment', 'cash_on_delivery'])[1 + (h >> 40) % 3]
        ELSE (ARRAY['invoice', 'invoice', 'credit_card', 'paypal', 'direct_debit'])[1 + (h >> 40) % 5] END;

CREATE TEMP TABLE gen_lines ON COMMIT DROP AS
SELECT o.order_no, o.customer_id, l AS line_no, 'SKU-' || ((o.h >> l) & 4095) AS sku, 1 + ((o.h >> (l * 3)) & 1) AS qty,
       customer_account.currency_amount_from_minor_units(500 + ((o.h >> (l * 5)) & 16383), o.currency) AS unit_price
FROM gen_orders o, LATERAL generate_series(1, o.nlines) l;

-- orders in time order, then their lines; the deferred check sees both at commit
INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at)
SELECT o.order_no, o.customer_id, o.channel, o.method, t.total, o.placed_at
FROM gen_orders o
JOIN (SELECT order_no, customer_account.sum(unit_price * qty) AS total FROM gen_lines GROUP BY order_no) t USING (order_no)
ORDER BY o.placed_at;
INSERT INTO customer_account.order_line (order_no, line_no, customer_id, sku, qty, unit_price)
SELECT order_no, line_no, customer_id, sku, qty, unit_price FROM gen_lines;

-- payments of invoices: 75% in full (some late), 10% part, 15% not at all;
-- a bank transfer for a store's invoice arrives through the web shop (a till takes no transfers)
INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel, order_no, received_at)
SELECT 'PAY-' || o.order_no, o.customer_id,
       CASE WHEN (o.h >> 50) % 20 < 15 THEN o.total ELSE o.total / 2 END,
       'bank_transfer', CASE WHEN o.channel LIKE 'store-%' THEN 'web-de' ELSE o.channel END, o.order_no,
       o.placed_at + interval '1 day' * (3 + (o.h >> 45) % 30)
FROM (SELECT g.*, x.total FROM gen_orders g JOIN customer_account.orders x USING (order_no)) o
WHERE o.method IN ('invoice', 'direct_debit', 'cash_on_delivery', 'prepayment') AND (o.h >> 50) % 20 < 17
  AND o.placed_at + interval '1 day' * (3 + (o.h >> 45) % 30) < now()
ORDER BY 7;

-- a few cancellations of undelivered orders, most orders delivered
UPDATE customer_account.orders o SET cancelled_at = o.placed_at + interval '2 hours'
FROM gen_orders g WHERE g.order_no = o.order_no AND (g.h >> 55) % 40 = 0;
UPDATE customer_account.orders o SET delivered_at = o.placed_at + interval '2 days'
FROM gen_orders g WHERE g.order_no = o.order_no AND o.cancelled_at IS NULL AND (g.h >> 55) % 40 <> 0;
-- loyalty: a tenth of the customers turn half of their available points into store credit
SELECT count(customer_account.redeem_points(a.customer_id, p.available / 2, 'web-de')) AS redemptions
FROM customer_account.loyalty_account a, LATERAL customer_account.loyalty_points(a.customer_id) p
WHERE a.customer_id >= :lo AND a.customer_id < :hi AND a.customer_id % 10 = 3 AND p.available >= 200 \gset
-- returns through accept_return(): the first line of about one in four orders
-- of the last 60 days comes back at a till (or by parcel to the Swiss shop);
-- refused returns (window, not delivered) are recorded too
CREATE TEMP TABLE gen_returns ON COMMIT DROP AS
SELECT r.* FROM gen_orders g
JOIN gen_lines l ON l.order_no = g.order_no AND l.line_no = 1,
LATERAL customer_account.accept_return(g.order_no, l.sku, 1,
    CASE WHEN g.currency = 'CHF' THEN 'web-ch' ELSE (ARRAY['store-berlin', 'store-hamburg'])[1 + (g.h >> 33) % 2] END) r
WHERE g.placed_at > now() - interval '60 days' AND (g.h >> 35) % 4 = 0
ORDER BY g.placed_at;
DROP TABLE gen_returns;
DROP TABLE gen_lines;
DROP TABLE gen_orders;
