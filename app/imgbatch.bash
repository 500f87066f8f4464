# bash completion for imgbatch(1)                           -*- shell-script -*-
#
# Installed as share/bash-completion/completions/imgbatch, where
# bash-completion loads it on first use; it can also be sourced on its own,
# since it needs none of bash-completion's helpers.
#
# The option list follows long_opts in app/cli.c (tests/test_cli.c checks
# that every long option there appears here).

_imgbatch()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    # --opt=value: bash splits it at '=' (COMP_WORDBREAKS), or leaves it
    # whole when '=' is not a word break.
    if [[ $cur == = ]] && ((COMP_CWORD > 0)); then
        cur=
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        prev=${cur%%=*}
        cur=${cur#*=}
    fi

    COMPREPLY=()
    case $prev in
    -o | --output | --base)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        return 0
        ;;
    -F | --format)
        mapfile -t COMPREPLY < <(compgen -W 'same jpg jpeg png webp tif tiff gif avif heic heif jxl jp2' -- "$cur")
        return 0
        ;;
    --if-exists)
        mapfile -t COMPREPLY < <(compgen -W 'update overwrite skip fail' -- "$cur")
        return 0
        ;;
    --compression)
        mapfile -t COMPREPLY < <(compgen -W '0 1 2 3 4 5 6 7 8 9' -- "$cur")
        return 0
        ;;
    --progress)
        mapfile -t COMPREPLY < <(compgen -W 'auto always never' -- "$cur")
        return 0
        ;;
    --shard)
        mapfile -t COMPREPLY < <(compgen -W 'auto auto/' -- "$cur")
        [[ ${COMPREPLY[0]-} == auto/ ]] && compopt -o nospace 2>/dev/null
        return 0
        ;;
    --files-from)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        [[ -z $cur ]] && COMPREPLY+=(-)
        return 0
        ;;
    -s | --size | -f | --filter | --quality | --name | -j | --jobs | --timeout | \
        --max-pixels | --max-memory | --worker-jobs | --max-errors | --variant | --include | \
        --exclude | --max-depth)
        # A value of the user's own: nothing sensible to offer.
        return 0
        ;;
    esac

    if [[ $cur == -* ]]; then
        local opts='-o --output --in-place --base -s --size -f --filter -F --format
            --quality --interlace --lossless --compression --keep-metadata --strip --name
            --if-exists -j --jobs --timeout --max-pixels --max-memory --worker-jobs
            --max-errors --fail-fast --no-autorotate --lenient --hidden --follow-symlinks
            --json --dry-run --progress -q --quiet -v --verbose --variant --include
            --exclude --files-from -0 --null --max-depth --shard -h --help --version'
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
        return 0
    fi

    # INPUT: image files and directories to walk.
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    return 0
}

complete -F _imgbatch imgbatch
