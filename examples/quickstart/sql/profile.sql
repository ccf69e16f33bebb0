-- Profile the landed flowers: a Delta table of the catalog, named by the :table parameter.
SELECT species,
       count(*) AS flowers,
       round(avg(petal_length), 2) AS avg_petal_length,
       round(avg(sepal_length), 2) AS avg_sepal_length
FROM IDENTIFIER(:table)
GROUP BY species
ORDER BY species;
