-- Profile the landed data with DuckDB; $path is bound from sql_task.parameters.
SELECT species,
       count(*) AS flowers,
       round(avg(petal_length), 2) AS avg_petal_length,
       round(avg(sepal_length), 2) AS avg_sepal_length
FROM read_csv_auto($path)
GROUP BY species
ORDER BY species;
