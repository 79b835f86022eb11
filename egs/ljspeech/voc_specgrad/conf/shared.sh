# ./run.sh --shared true: the shared clips, ljspeech_mini (29 train, 3 dev) followed by
# ljspeech_eval as eval1, from $SPECGRAD_DATA or ../shared/data. These are run.sh's defaults
# in that mode: any option given on the command line still wins.
db_root=dump/shared_db
corpus_cmd="python3 local/make_shared_db.py"  # stage -1: the shared clips as one LJSpeech folder
corpus_name="the shared LJ Speech clips (ljspeech_mini, ljspeech_eval)"
num_dev=3
num_eval=5
nj=3
